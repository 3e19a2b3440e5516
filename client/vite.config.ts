import { defineConfig } from 'vite';
import solid from 'vite-plugin-solid';

const api = process.env.SPANWISE_API ?? 'http://localhost:3000';

export default defineConfig({
  root: import.meta.dirname,
  plugins: [solid()],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  server: {
    proxy: {
      '/api': api,
      '/sync': { target: api.replace(/^http/, 'ws'), ws: true },
    },
  },
});
