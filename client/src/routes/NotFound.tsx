import { A } from '@solidjs/router';

export function NotFound() {
  return (
    <section class="page">
      <h1>Not found</h1>
      <p>
        There is nothing at this address. <A href="/">Back to your projects</A>.
      </p>
    </section>
  );
}
