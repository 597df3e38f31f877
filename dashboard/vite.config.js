// The build merod embeds (host/server/src/dashboard.rs): three files with
// fixed names (no content hashes, so the embedded list never changes and
// the output is the same on every machine), relative URLs (served under
// /admin-dashboard/), and no inline code (the page's CSP allows none).
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: {
    outDir: "../host/server/dashboard-dist",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: false,
    cssCodeSplit: false,
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    rollupOptions: {
      output: {
        entryFileNames: "app.js",
        chunkFileNames: "app-[name].js",
        assetFileNames: "app[extname]",
        inlineDynamicImports: true,
      },
    },
  },
});
