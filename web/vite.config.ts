// Builds the chat page into the Python package, with fixed file names: the bundle is committed,
// and CI rebuilds it and fails when the committed copy differs.
import { defineConfig } from "vitest/config";

export default defineConfig({
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../src/hector/web/static",
    emptyOutDir: true,
    assetsDir: "ui/assets",
    sourcemap: false,
    modulePreload: { polyfill: false },
    rollupOptions: {
      output: {
        entryFileNames: "ui/assets/app.js",
        chunkFileNames: "ui/assets/[name].js",
        assetFileNames: "ui/assets/app[extname]",
      },
    },
  },
  test: { environment: "node" },
});
