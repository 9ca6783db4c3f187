// One multi-page build: every HTML file in web/pages/ is an entry, written to web/dist/.
// The server (signaling/app.py `add_pages`) serves web/dist/<entry>.html at its route and
// web/dist/assets/ at /assets/.
import { fileURLToPath, URL } from 'node:url';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vitest/config';

const pagesDir = fileURLToPath(new URL('./pages', import.meta.url));
const entries = Object.fromEntries(
  readdirSync(pagesDir)
    .filter((f) => f.endsWith('.html'))
    .map((f) => [f.replace(/\.html$/, ''), resolve(pagesDir, f)]),
);

export default defineConfig({
  root: pagesDir,
  base: '/',
  plugins: [vue()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  build: {
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: true,
    rollupOptions: { input: entries },
  },
  server: {
    // `npm run dev`: the API and Socket.IO come from a running `vtax serve` on :8080.
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/socket.io': { target: 'http://127.0.0.1:8080', ws: true },
    },
  },
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['tests/unit/**/*.test.ts'],
    environment: 'happy-dom',
  },
});
