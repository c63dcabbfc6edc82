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

// The form makes an exposed service; a bad port is shown under its fields before anything is sent.
test('the service form creates an exposed service', async ({ page }) => {
  await signIn(page, '/new-service');
  await page.getByLabel('Name', { exact: true }).fill('form-site-e2e');
  await page.getByLabel('Image').fill('docker.io/library/alpine:3.20');
  await page.locator('.editor textarea').fill('mkdir -p /tmp/www && echo made-by-form > /tmp/www/index.html\nexec httpd -f -p 8080 -h /tmp/www\n');
  const fields = page.getByTestId('expose-fields');
  await fields.getByLabel('Port').fill('8080');
  await fields.getByLabel('Instances kept running').fill('3');
  await fields.getByLabel('At most').fill('2');
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.locator('[data-field="expose"]')).toContainText('must not exceed max_scale (2)');

  await fields.getByLabel('Instances kept running').fill('1');
  await fields.getByLabel('Strip the path prefix (the app sees /)').check();
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page).toHaveURL(/\/services\/form-site-e2e$/);
  await expect(page.getByTestId('exposed-state')).toHaveText('ready', { timeout: 30_000 });
  const answer = await page.request.get('/system/services/form-site-e2e/exposed/');
  expect(await answer.text()).toContain('made-by-form');
});
