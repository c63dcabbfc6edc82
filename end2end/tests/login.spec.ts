import { test, expect, hydrated, api } from './fixtures';

// Sign-in through a real OpenID provider (npm oidc-provider, started by scripts/with-server.sh)
// with EGI-style entitlements: alice and bob are in vo.example.eu, carol is not.

test('a VO member signs in with the provider, sees only what is theirs, and logs out @smoke', async ({ page, request }) => {
  // The admin's private service must not show up for alice.
  await api.createService(request, {
    name: 'admin-private', image: 'alpine', script: 'true',
    input: [{ storage_provider: 'minio.default', path: 'admin-private/in' }],
  });

  await page.goto('/services');
  await expect(page).toHaveURL(/\/login\?next=/);
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in with EGI Check-In (test)' }).click();
  // The provider signs alice in at once and sends her back where she was going.
  await expect(page).toHaveURL(/\/services$/);
  await expect(page.getByTestId('current-user')).toHaveText('Alice Example');
  await expect(page.getByText('admin-private')).toHaveCount(0);

  // Nothing about the tokens reaches the page's storage.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  expect(stored).not.toMatch(/token|eyJ/i);
  const cookies = await page.context().cookies();
  expect(cookies.find((c) => c.name === 'oscar_session')?.httpOnly).toBe(true);

  await page.getByRole('button', { name: 'Log out' }).click();
  // Logged out at the provider too, then back on our login page.
  await expect(page).toHaveURL(/\/login/);
  await page.goto('/services');
  await expect(page).toHaveURL(/\/login\?next=/);
});

test('someone outside the required VO is told which VO is required', async ({ page }) => {
  await page.goto('/auth/login?login_hint=carol@test');
  await expect(page).toHaveURL(/\/login\?error=vo/);
  await expect(page.getByRole('alert')).toContainText('members of the VO vo.example.eu');
  await page.goto('/services');
  await expect(page).toHaveURL(/\/login\?next=/);
});

test('a user sees their own store keys on the Info page and rotates them', async ({ page }) => {
  await page.goto('/auth/login?login_hint=bob@test&next=/info');
  await expect(page).toHaveURL(/\/info$/);
  await hydrated(page);
  // The secret is not in the page until asked for.
  await expect(page.getByTestId('store-secret-key')).toHaveCount(0);
  await page.getByRole('button', { name: 'Show my store keys' }).click();
  const accessKey = page.getByTestId('store-access-key');
  await expect(accessKey).toHaveText(/^OSCU[A-Z2-7]{16}$/);
  await expect(page.getByTestId('store-keys-note')).toContainText('buckets you own or that are shared with you');
  const first = await accessKey.textContent();
  await expect(page.getByTestId('store-secret-key')).toHaveText(/^[0-9a-f]{64}$/);

  await page.getByRole('button', { name: 'Rotate keys' }).click();
  await page.getByRole('alertdialog', { name: 'Confirm rotation' }).getByRole('button', { name: 'Rotate' }).click();
  await expect(accessKey).not.toHaveText(first!);
  await expect(accessKey).toHaveText(/^OSCU[A-Z2-7]{16}$/);
});

test('a user keeps registry credentials for private images on the Info page', async ({ page, expectedErrors }) => {
  // The bad name below is answered 400, which the browser logs.
  expectedErrors.allow(/Failed to load resource: the server responded with a status of 400/);
  await page.goto('/auth/login?login_hint=alice@test&next=/info');
  await expect(page).toHaveURL(/\/info$/);
  await hydrated(page);
  const panel = page.getByTestId('registry-credentials');
  await expect(panel.getByTestId('no-registry-credentials')).toBeVisible();
  await panel.getByLabel('Name').fill('Bad Name');
  await panel.getByLabel('Registry').fill('https://ghcr.io/');
  await panel.getByLabel('User').fill('alice');
  await panel.getByLabel('Password or token').fill('t0ken-never-shown');
  await panel.getByRole('button', { name: 'Save' }).click();
  await expect(panel.getByRole('alert')).toContainText('name');
  await panel.getByLabel('Name').fill('ghcr');
  await panel.getByRole('button', { name: 'Save' }).click();
  // Stored under the registry's name as image references spell it; the password stays out.
  await expect(panel.getByRole('cell', { name: 'ghcr.io', exact: true })).toBeVisible();
  await expect(page.locator('body')).not.toContainText('t0ken-never-shown');
  await panel.getByRole('button', { name: 'Delete ghcr' }).click();
  await expect(panel.getByTestId('no-registry-credentials')).toBeVisible();
});

test('a user sees their quota and use as bars on the Info page', async ({ page, request }) => {
  await api.setQuota(request, 'bob@test', { jobs: 3, minio: { buckets: '4', storage_total: '1Gi' } });
  await page.goto('/auth/login?login_hint=bob@test&next=/info');
  await expect(page).toHaveURL(/\/info$/);
  await hydrated(page);
  const quota = page.getByTestId('quota');
  await expect(quota.getByRole('meter', { name: 'Jobs running' })).toHaveAttribute('value', '0');
  await expect(quota).toContainText('0 of 3');
  await expect(quota).toContainText('of 4');
  await expect(quota).toContainText('of 1.0 GiB');
  // No limit on CPU: said in words, no bar.
  await expect(quota).toContainText('cores (unlimited)');
  await expect(quota.getByRole('meter', { name: 'CPU of running jobs' })).toHaveCount(0);
});

test('a user makes, lists and deletes volumes on the Info page', async ({ page, expectedErrors }) => {
  // The oversized volume below is answered 400, which the browser logs.
  expectedErrors.allow(/Failed to load resource: the server responded with a status of 400/);
  await page.goto('/auth/login?login_hint=alice@test&next=/info');
  await expect(page).toHaveURL(/\/info$/);
  await hydrated(page);
  const panel = page.getByTestId('volumes');
  await expect(panel.getByTestId('no-volumes')).toBeVisible();
  await panel.getByLabel('Name').fill('models');
  await panel.getByLabel('Size').fill('500Gi');
  await panel.getByRole('button', { name: 'Create volume' }).click();
  await expect(panel.getByRole('alert')).toContainText('size');
  await panel.getByLabel('Size').fill('100Mi');
  await panel.getByRole('button', { name: 'Create volume' }).click();
  const row = panel.getByTestId('volume-row');
  await expect(row).toContainText('models');
  await expect(row).toContainText('100Mi');
  await expect(row).toContainText('Bound');
  await panel.getByRole('button', { name: 'Delete models' }).click();
  await expect(panel.getByTestId('no-volumes')).toBeVisible();
});
