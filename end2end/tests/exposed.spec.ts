import { test, expect, signIn, api } from './fixtures';

// An exposed service's page shows its state, opens it, and lets its owner stop and start it.
test('an exposed service is opened, stopped and started from its page', async ({ page, request }) => {
  await api.createService(request, {
    name: 'site-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: 'mkdir -p /tmp/www && echo "<h1>hello from site-e2e</h1>" > /tmp/www/index.html\nexec httpd -f -p 80 -h /tmp/www\n',
    expose: { api_port: 80, rewrite_target: true },
  });

  await signIn(page, '/services/site-e2e');
  const panel = page.getByTestId('exposed');
  await expect(panel.getByTestId('exposed-state')).toHaveText('ready', { timeout: 30_000 });
  await expect(panel.getByTestId('exposed-instances')).toContainText('1 ready of 1');
  await expect(panel.getByTestId('exposed-log')).toContainText('instance 0: ready');
  const open = panel.getByTestId('exposed-open');
  await expect(open).toHaveAttribute('href', '/system/services/site-e2e/exposed/');

  // The app, in a tab of its own, sandboxed away from the dashboard's origin.
  const [tab] = await Promise.all([page.context().waitForEvent('page'), open.click()]);
  await expect(tab.getByRole('heading')).toHaveText('hello from site-e2e');
  await tab.close();

  await panel.getByRole('button', { name: 'Stop' }).click();
  await expect(panel.getByTestId('exposed-state')).toHaveText('stopped');
  await expect(page.getByTestId('toasts')).toContainText('Service site-e2e: stopped');
  const refused = await request.get('/system/services/site-e2e/exposed/');
  expect(refused.status()).toBe(503);

  await panel.getByRole('button', { name: 'Start', exact: true }).click();
  await expect(panel.getByTestId('exposed-state')).toHaveText('ready', { timeout: 30_000 });
});
