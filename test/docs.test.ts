import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { guidePage } from '../scripts/docs/typedoc-plugin.mjs';

/**
 * The docs site (`npm run docs`): one typedoc build with the API of every subpath and every guide
 * in docs/ as a page, whose links all land inside the site and which loads nothing from the network.
 */
const root = resolve(import.meta.dirname, '..');
const out = mkdtempSync(join(tmpdir(), 'leasehold-docs-'));
const page = (path: string) => readFileSync(join(out, path), 'utf8');

function filesUnder(dir: string, suffix: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(suffix) && statSync(join(dir, f)).isFile())
    .map((f) => join(dir, f));
}

let log = '';

describe('the docs site', () => {
  beforeAll(() => {
    const typedoc = join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
    // typedoc.json sets treatWarningsAsErrors: a warning fails the build (non-zero exit throws here)
    log = execFileSync(process.execPath, [typedoc, '--out', out], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  }, 180_000);

  it('builds with no warning, every public export documented', () => {
    expect(log).not.toMatch(/warning|error/i);
    expect(existsSync(join(out, 'index.html'))).toBe(true);
  });

  it('has one module page per package subpath, named as users import it', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const subpaths = Object.keys(pkg.exports).filter((p) => p !== './package.json');
    expect(subpaths.length).toBeGreaterThan(1);
    for (const subpath of subpaths) {
      const name = subpath === '.' ? 'leasehold' : `leasehold/${subpath.slice(2)}`;
      const file = `modules/${name.replace('/', '_')}.html`;
      expect(existsSync(join(out, file)), `${name}: no ${file}; add its entry point to typedoc.json`).toBe(true);
      expect(page(file)).toContain(`<h1>Module ${name}</h1>`);
    }
    expect(existsSync(join(out, 'modules', 'index.html'))).toBe(false);
  });

  it('turns every guide in docs/ into a page titled by its heading', () => {
    const guides = filesUnder(join(root, 'docs'), '.md').filter((f) => !f.startsWith(join(root, 'docs', 'api')));
    expect(guides.length).toBeGreaterThanOrEqual(8);
    for (const guide of guides) {
      const title = readFileSync(guide, 'utf8').match(/^# (.+)$/m)?.[1];
      expect(title, `${relative(root, guide)} has no # heading`).toBeDefined();
      const file = join(out, guidePage(guide));
      expect(existsSync(file), `${relative(root, guide)} has no page; add it to projectDocuments in typedoc.json`).toBe(true);
      const html = readFileSync(file, 'utf8');
      expect(html).toContain(`<title>${title!.replace(/`/g, '')} | leasehold</title>`);
      expect(html.match(/<h1[\s>]/g), `${relative(root, guide)}: one h1`).toHaveLength(1);
    }
  });

  it('shows the project title once on the front page', () => {
    expect(page('index.html').match(/<h1[\s>]/g)).toHaveLength(1);
  });

  it('links from the README and between guides land on pages and headings of the site', () => {
    const index = page('index.html');
    for (const guide of ['concepts', 'production', 'writing-a-store', 'stores.postgres']) expect(index).toContain(`href="documents/${guide}.html"`);
    // a guide left out of the site would be copied as a raw .md file instead
    expect(filesUnder(out, '.md').map((f) => relative(out, f))).not.toContainEqual(expect.stringMatching(/concepts|production|store/));
    const broken: string[] = [];
    for (const file of filesUnder(out, '.html')) {
      const html = readFileSync(file, 'utf8');
      for (const [, url] of html.matchAll(/(?:href|src)="([^"]+)"/g)) {
        if (/^[a-z]+:/i.test(url!)) continue;
        const [path, anchor] = url!.split('#');
        const target = path ? join(dirname(file), path) : file;
        if (!existsSync(target)) broken.push(`${relative(out, file)} -> ${url}`);
        else if (anchor && target.endsWith('.html') && !readFileSync(target, 'utf8').includes(`id="${anchor}"`)) broken.push(`${relative(out, file)} -> ${url} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('draws mermaid diagrams with a bundle that ships inside the site', () => {
    const concepts = page(guidePage(join(root, 'docs', 'concepts.md')));
    expect(concepts).toContain('<code class="mermaid">stateDiagram-v2');
    expect(concepts).toContain('src="../assets/custom.js"');
    expect(page('assets/custom.js')).toContain('assets/mermaid.min.js');
    const bundle = page('assets/mermaid.min.js');
    expect(bundle.length).toBeGreaterThan(1_000_000);
    expect(bundle).toContain('stateDiagram');
    // nothing is loaded from another host: no remote scripts, stylesheets, images or imports
    for (const file of filesUnder(out, '.html')) {
      const html = readFileSync(file, 'utf8');
      expect(html.match(/<(?:script|img|iframe)[^>]+src="(?:https?:)?\/\/[^"]*"/g), relative(out, file)).toBeNull();
      expect(html.match(/<link[^>]+href="(?:https?:)?\/\/[^"]*"/g), relative(out, file)).toBeNull();
    }
    expect(page('assets/custom.js')).not.toMatch(/https?:\/\//);
  });
});
