import { test, expect, hydrated, api } from './fixtures';

// Sign-in through a real OpenID provider (npm oidc-provider, started by scripts/with-server.sh)
// with EGI-style entitlements: alice and bob are in vo.example.eu, carol is not.

test('a VO member signs in with the provider, sees only what is theirs, and logs out', async ({ page, request }) => {
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
