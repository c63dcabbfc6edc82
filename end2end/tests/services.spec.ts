import { test, expect, signIn, api } from './fixtures';

const service = {
  name: 'upper-e2e',
  image: 'docker.io/library/alpine:3.20',
  script: '#!/bin/sh\ntr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/out.txt"\n',
  memory: '256Mi',
  cpu: '0.5',
  environment: { variables: { MODE: 'loud' }, secrets: { API_KEY: 'planted-e2e-secret' } },
  input: [{ storage_provider: 'minio', path: 'upper-e2e/in' }],
  output: [{ storage_provider: 'minio', path: 'upper-e2e/out' }],
};

test('a service defined through the API is listed, inspected, and deleted with confirmation', async ({ page, request }) => {
  await api.createService(request, service);

  await signIn(page, '/services');
  const row = page.getByRole('row', { name: /upper-e2e/ });
  await expect(row).toContainText('upper-e2e/in');

  await page.getByLabel('Filter services').fill('nothing-matches');
  await expect(row).toHaveCount(0);
  await page.getByLabel('Filter services').fill('alpine');
  await expect(row).toHaveCount(1);
  // Filtered on the server; the address keeps the filter, so a reload shows the same list.
  await expect(page).toHaveURL(/\/services\?q=alpine$/);
  await page.reload();
  await expect(page.getByLabel('Filter services')).toHaveValue('alpine');
  await expect(row).toHaveCount(1);

  await row.getByRole('link', { name: 'upper-e2e' }).click();
  await expect(page).toHaveURL(/\/services\/upper-e2e$/);
  await expect(page.getByTestId('service-name')).toHaveText('upper-e2e');
  await expect(page.getByTestId('memory')).toHaveText('256Mi');
  await expect(page.getByText('POST /job/upper-e2e')).toBeVisible();
  await expect(page.locator('body')).not.toContainText('planted-e2e-secret');

  await page.getByRole('button', { name: 'Reveal token' }).click();
  await expect(page.getByTestId('token')).toHaveText(/^[0-9a-f]{64}$/);

  await page.getByRole('button', { name: 'Delete service…' }).click();
  const dialog = page.getByRole('alertdialog', { name: 'Confirm deletion' });
  await expect(dialog.getByTestId('deletion-plan')).toContainText('upper-e2e');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toHaveCount(0);

  await page.getByRole('button', { name: 'Delete service…' }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete it and its bucket', exact: true }).click();
  await expect(page).toHaveURL(/\/services$/);
  // Other tests share this server, so check this service's row, not an empty list.
  await expect(page.getByRole('row', { name: /upper-e2e/ })).toHaveCount(0);

  const gone = await api.getService(request, 'upper-e2e');
  expect(gone.status()).toBe(404);
});

test('the workflow view shows which services feed which', async ({ page, request }) => {
  const step = (name: string, input: string, output: string) => ({
    name,
    image: 'docker.io/library/alpine:3.20',
    script: 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n',
    input: [{ path: input }],
    output: [{ path: output }],
  });
  await api.createService(request, step('flow-first', 'flow/in', 'flow/middle'));
  await api.createService(request, step('flow-second', 'flow/middle', 'flow/out'));

  await signIn(page, '/services');
  const workflow = page.getByTestId('workflow');
  await expect(workflow.getByRole('heading', { name: 'Workflows' })).toBeVisible();
  await expect(workflow.locator('g.workflow-node[data-service="flow-first"]')).toBeVisible();
  await expect(workflow.locator('g.workflow-node[data-service="flow-second"]')).toBeVisible();
  await expect(workflow.locator('path.workflow-edge title', { hasText: 'flow-first → flow-second through flow/middle' })).toHaveCount(1);
  // The second sits right of the first.
  const first = await workflow.locator('g.workflow-node[data-service="flow-first"] rect').boundingBox();
  const second = await workflow.locator('g.workflow-node[data-service="flow-second"] rect').boundingBox();
  expect(second!.x).toBeGreaterThan(first!.x);
  // The list says the same with links.
  const link = workflow.getByRole('listitem').filter({ hasText: 'through flow/middle' });
  await link.getByRole('link', { name: 'flow-second' }).click();
  await expect(page).toHaveURL(/\/services\/flow-second$/);
});

test('a service is created from an example in one click, or opened in YAML first', async ({ page }) => {
  await signIn(page, '/new-service');
  const gallery = page.getByTestId('examples');
  await gallery.getByText('Start from an example').click();
  const workflow = gallery.locator('li[data-example="word-count-workflow.yaml"]');
  await expect(workflow.getByRole('heading', { name: 'Word count, a two-step workflow' })).toBeVisible();
  await expect(workflow).toContainText('word-split, word-tally');

  // Open in YAML: the tab shows the example's FDL, to change before applying.
  await workflow.getByRole('button', { name: 'Open in YAML' }).click();
  await expect(page.getByRole('tab', { name: 'YAML' })).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByLabel('FDL (YAML)')).toHaveValue(/name: word-tally/);

  // Create: made at once, and its page opens.
  const upper = gallery.locator('li[data-example="text-upper.yaml"]');
  await upper.getByRole('button', { name: 'Create' }).click();
  await expect(page).toHaveURL(/\/services\/upper-text$/);
  await expect(page.getByTestId('toasts')).toContainText('Created upper-text');
});
