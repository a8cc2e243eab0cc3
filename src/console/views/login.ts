/**
 * The console's sign-in form (issue 13): one password field for the admin token. Standalone (no nav: nothing
 * behind it is reachable yet) and without the script. The field is a password input with
 * autocomplete="current-password" so password managers offer the stored token (WHATWG HTML §4.10.18.7.1
 * "Autofill"); the error is announced with role="alert".
 */
import { documentHead } from './layout.js';
import { html } from './html.js';

export function renderLogin(opts: { error: string | null }): string {
  return html`${documentHead('Sign in', false)}
<body class="page-login">
<main id="main" class="login">
<h1>egress-inspector console</h1>
${opts.error !== null && html`<p class="notice notice-error" role="alert">${opts.error}</p>`}
<form method="post" action="/ui/login" class="login-form">
<label for="token">Admin token</label>
<input type="password" id="token" name="token" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
<p class="hint">The token is <code>admin.token</code> from the configuration, or else the contents of the file named by <code>console.token_file</code>.</p>
</main>
</body>
</html>
`.toString();
}
