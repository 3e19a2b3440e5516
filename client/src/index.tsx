import { render } from 'solid-js/web';
import { App } from './app.tsx';
import './styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
render(() => <App />, root);

// The app shell kept for reloads while the server cannot be reached (public/sw.js); not under
// Vite's dev server, whose modules are not the built assets it keeps.
if (import.meta.env.PROD && 'serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js').catch(() => {
    // Without it the app works as before; only a reload offline does not open.
  });
}
