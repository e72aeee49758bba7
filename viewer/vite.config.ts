/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

// `npm run dev` serves the application with hot reload and forwards the
// API to a centre started by `cargo run -- serve` on port 8080.
const centre = process.env.TELEDIAG_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [preact()],
  // Cornerstone's decoder runs in a module worker that splits its codecs.
  worker: { format: 'es' },
  optimizeDeps: {
    // Pre-bundled, the loader's `new URL(..., import.meta.url)` would point
    // into .vite/deps and the worker and codecs would not be found.
    exclude: ['@cornerstonejs/dicom-image-loader'],
    include: [
      'dicom-parser',
      '@cornerstonejs/codec-charls/decodewasmjs',
      '@cornerstonejs/codec-openjpeg/decodewasmjs',
      '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs',
      '@cornerstonejs/codec-openjph/wasmjs',
    ],
  },
  build: {
    outDir: 'dist',
    // Hashed file names under assets/: the centre serves them as immutable.
    assetsDir: 'assets',
    sourcemap: true,
    target: 'es2022',
  },
  server: {
    proxy: { '/api': centre, '/dicom-web': centre, '/verify': centre },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
