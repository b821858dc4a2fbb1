// glassbox-embed.js: <glassbox-widget> for pages that prefer a tag to an iframe.
//
//   <script src="https://host/explorer/glassbox-embed.js"></script>
//   <glassbox-widget experiment="v1/..." widget="attention" height="420"></glassbox-widget>
//
// The element makes an iframe of the explorer that shows one widget (`#<experiment>&widget=<kind>`,
// `&static=1` with the `static` attribute) and sizes it to the widget: the embedded page posts
// `{ type: "glassbox:height", height, widget }` to its parent whenever its height changes. The
// explorer's address defaults to the folder this script was loaded from (`src` overrides it).
// No other request is made; nothing is tracked.
(() => {
  const here = document.currentScript ? new URL('.', document.currentScript.src).href : new URL('.', location.href).href;
  class GlassboxWidget extends HTMLElement {
    static get observedAttributes() {
      return ['experiment', 'widget', 'height', 'static', 'src'];
    }
    connectedCallback() {
      this.render();
    }
    attributeChangedCallback() {
      if (this.isConnected) this.render();
    }
    disconnectedCallback() {
      if (this.listener) window.removeEventListener('message', this.listener);
    }
    render() {
      const experiment = (this.getAttribute('experiment') || '').replace(/^#/, '');
      const widget = this.getAttribute('widget') || 'predictions';
      const base = this.getAttribute('src') || here;
      const frozen = this.hasAttribute('static') ? '&static=1' : '';
      const frame = this.frame || document.createElement('iframe');
      frame.src = `${base}#${experiment}&widget=${encodeURIComponent(widget)}${frozen}`;
      frame.title = `glassbox: ${widget}`;
      frame.loading = 'lazy';
      frame.setAttribute('width', '100%');
      frame.style.border = '0';
      frame.style.display = 'block';
      frame.style.height = `${Number(this.getAttribute('height')) || 420}px`;
      if (!this.frame) {
        this.frame = frame;
        this.appendChild(frame);
        this.listener = (ev) => {
          if (ev.source === frame.contentWindow && ev.data && ev.data.type === 'glassbox:height' && Number.isFinite(ev.data.height)) {
            frame.style.height = `${Math.ceil(ev.data.height)}px`;
          }
        };
        window.addEventListener('message', this.listener);
      }
    }
  }
  if (!customElements.get('glassbox-widget')) customElements.define('glassbox-widget', GlassboxWidget);
})();
