/**
 * The dashboard's page, script and style are plain files under `assets/`, imported with a
 * `?raw` suffix as strings: tsup inlines them (the `raw-assets` plugin in tsup.config.ts) and
 * vite does so natively, so the package carries them inside dist/ and reads no file at run time.
 */
declare module '*?raw' {
  const content: string;
  export default content;
}
