// Draws the ```mermaid blocks of a docs page (TypeDoc renders them as <pre><code class="mermaid">).
// The mermaid bundle is a file of this site (assets/mermaid.min.js, copied by typedoc-plugin.mjs):
// nothing is fetched from the network, and pages without a diagram never load it.
(() => {
  const blocks = [...document.querySelectorAll('pre > code.mermaid')];
  if (blocks.length === 0) return;
  const script = document.createElement('script');
  script.src = `${document.documentElement.dataset.base ?? './'}assets/mermaid.min.js`;
  script.onload = () => {
    const theme = document.documentElement.dataset.theme;
    const dark = theme === 'dark' || (theme !== 'light' && matchMedia('(prefers-color-scheme: dark)').matches);
    const diagrams = blocks.map((code) => {
      const diagram = document.createElement('div');
      diagram.className = 'mermaid';
      diagram.textContent = code.textContent;
      code.parentElement.replaceWith(diagram);
      return diagram;
    });
    window.mermaid.initialize({ startOnLoad: false, theme: dark ? 'dark' : 'default', securityLevel: 'strict' });
    void window.mermaid.run({ nodes: diagrams });
  };
  document.head.append(script);
})();
