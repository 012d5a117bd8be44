// leasehold's TypeDoc plugin (typedoc.json loads it), so that the guides in docs/ stay plain
// Markdown that reads as well on GitHub as in the site:
// - a guide's title is its first `# heading` and its sidebar group its folder (docs/*.md:
//   "Guides", docs/stores/*.md: "Stores"): no front matter to keep in sync with the heading;
// - a guide's page is named after its file (docs/stores/postgres.md: documents/stores.postgres.html),
//   not after its title, so links to it stay put when a heading is reworded;
// - ```mermaid blocks are drawn in the browser by a copy of the `mermaid` package's bundle that
//   ships inside the site (assets/mermaid.min.js): the site loads nothing from the network.
//   mermaid-blocks.js (TypeDoc's `customJs`) loads it only on pages that have a diagram.
import { copyFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { Converter, KindRouter, RendererEvent } from 'typedoc';

const GROUPS = { docs: 'Guides', stores: 'Stores' };
const DOCS = resolve(import.meta.dirname, '../../docs');

/** Where a guide's page goes: its path under docs/, without `.md`, folders joined by dots. */
export function guidePage(file) {
  return `documents/${relative(DOCS, file).replace(/\.md$/, '').split(sep).join('.')}.html`;
}

class GuideRouter extends KindRouter {
  getIdealBaseName(reflection) {
    const file = reflection.isDocument() ? reflection.project.files.getReflectionPath(reflection) : undefined;
    if (file && !relative(DOCS, file).startsWith('..')) return guidePage(file).replace(/\.html$/, '');
    return super.getIdealBaseName(reflection);
  }
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.renderer.defineRouter('leasehold', GuideRouter);

  app.converter.on(Converter.EVENT_CREATE_DOCUMENT, (_context, doc) => {
    const file = doc.project.files.getReflectionPath(doc) ?? '';
    const heading = doc.content.find((part) => part.kind === 'text')?.text.match(/^# (.+)$/m);
    // a `title` in front matter, when a guide has one, has already replaced the file name
    if (heading && basename(doc.name) === basename(file, '.md')) doc.name = heading[1].trim();
    if (!('group' in doc.frontmatter)) doc.frontmatter.group = GROUPS[basename(dirname(file))] ?? 'Guides';
  });

  app.renderer.on(RendererEvent.END, (event) => {
    const bundle = createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js');
    copyFileSync(bundle, join(event.outputDirectory, 'assets', 'mermaid.min.js'));
  });
}
