import { test, expect, signIn, ADMIN, PASSWORD } from './fixtures';

const basic = 'Basic ' + Buffer.from(`${ADMIN}:${PASSWORD}`).toString('base64');

test('memory is edited through the form and read back through the OSCAR API', async ({ page, request }) => {
  const service = {
    name: 'edit-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: '#!/bin/sh\necho hi\n',
    memory: '256Mi',
    environment: { secrets: { API_KEY: 'kept-e2e-secret' } },
    input: [{ path: 'edit-e2e/in' }],
    output: [{ path: 'edit-e2e/out' }],
  };
  expect((await request.post('/system/services', { data: service, headers: { Authorization: basic } })).status()).toBe(201);

  await signIn(page, '/services/edit-e2e');
  await page.getByRole('link', { name: 'Edit' }).click();
  await expect(page).toHaveURL(/\/services\/edit-e2e\/edit$/);
  await expect(page.getByLabel('Memory')).toHaveValue('256Mi');

  // The browser checks with the server's rules before sending anything.
  await page.getByLabel('Memory').fill('12X');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('[data-field="memory"]')).toContainText('"12X" is not a Kubernetes quantity');

  await page.getByLabel('Memory').fill('2Gi');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/services\/edit-e2e$/);
  await expect(page.getByTestId('memory')).toHaveText('2Gi');

  const stored = await (await request.get('/system/services/edit-e2e', { headers: { Authorization: basic } })).json();
  expect(stored.memory).toBe('2Gi');
  expect(stored.token).toMatch(/^[0-9a-f]{64}$/);
  expect(JSON.stringify(stored)).not.toContain('kept-e2e-secret');
});
