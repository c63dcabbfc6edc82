import { test, expect, hydrated, signIn, ADMIN } from './fixtures';

test('signed-out visitors land on the login page', async ({ page }) => {
  await page.goto('/info');
  await expect(page).toHaveURL(/\/login\?next=\/info$/);
  await expect(page).toHaveTitle('OSCAR - Sign in');
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
});

test('a wrong password shows a message and keeps the user on the login page', async ({ page, expectedErrors }) => {
  // Chromium logs the refused request itself; nothing else may be logged.
  expectedErrors.allow(/Failed to load resource: the server responded with a status of 401/);
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill(ADMIN);
  await page.getByLabel('Password').fill('definitely-wrong');
  const response = page.waitForResponse((r) => r.url().endsWith('/api/auth/login'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  expect((await response).status()).toBe(401);
  await expect(page.getByRole('alert')).toContainText('invalid username or password');
  await expect(page).toHaveURL(/\/login$/);
});

test('the admin signs in, visits every page through the hydrated app, and signs out @smoke', async ({ page }) => {
  await signIn(page, '/services');
  await expect(page.getByRole('heading', { name: 'Services', level: 1 })).toBeVisible();

  // A marker on window survives only client-side navigation: proof the page hydrated.
  await page.evaluate(() => ((window as any).__stillHere = true));
  const nav = page.getByRole('navigation', { name: 'Main' });

  await nav.getByRole('link', { name: 'Buckets' }).click();
  await expect(page).toHaveURL(/\/buckets$/);
  await expect(page).toHaveTitle('OSCAR - Buckets');
  await expect(page.getByRole('heading', { name: 'Buckets', level: 1 })).toBeVisible();

  await nav.getByRole('link', { name: 'Jobs' }).click();
  await expect(page).toHaveURL(/\/jobs$/);
  await expect(page.getByRole('heading', { name: 'Jobs', level: 1 })).toBeVisible();

  await nav.getByRole('link', { name: 'Info' }).click();
  await expect(page).toHaveURL(/\/info$/);
  await expect(page.getByTestId('mode')).toHaveText('embedded');
  await expect(page.getByTestId('database')).toHaveText('SQLite');
  await expect(page.getByTestId('storage-endpoint')).toContainText('http://127.0.0.1:');

  await nav.getByRole('link', { name: 'Services' }).click();
  await expect(page).toHaveURL(/\/services$/);
  expect(await page.evaluate(() => (window as any).__stillHere)).toBe(true);

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/services');
  await expect(page).toHaveURL(/\/login\?next=\/services$/);
});

test('a deep link survives the sign-in', async ({ page }) => {
  await signIn(page, '/info');
  await expect(page.getByRole('heading', { name: 'Info', level: 1 })).toBeVisible();
});

test('pages render for a direct load too (server-side rendering)', async ({ page }) => {
  await signIn(page, '/services');
  for (const [path, heading] of [['/buckets', 'Buckets'], ['/jobs', 'Jobs'], ['/info', 'Info']]) {
    await page.goto(path);
    await hydrated(page);
    await expect(page.getByRole('heading', { name: heading, level: 1 })).toBeVisible();
  }
});

test('the API page documents every operation and tries one out', async ({ page }) => {
  await signIn(page, '/services');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API' }).click();
  await expect(page).toHaveURL(/\/api-docs\/$/);
  await expect(page.getByRole('heading', { name: /OSCAR API/ })).toBeVisible();
  await expect(page.locator('#operations-services-create_service')).toBeVisible();
  await expect(page.locator('#operations-jobs-run_service')).toBeVisible();

  // Swagger UI runs under the server's content security policy: a blocked script or request
  // would be a console error, which fails the test.
  const health = page.locator('#operations-platform-health');
  await health.locator('.opblock-summary-control').click();
  await health.getByRole('button', { name: 'Try it out' }).click();
  await health.getByRole('button', { name: 'Execute' }).click();
  await expect(health.locator('.live-responses-table tr.response .response-col_status')).toHaveText('200');
});
