import * as os from 'os';
import * as path from 'path';
import { test, expect, signIn, hydrated, api } from './fixtures';

// The README's screenshots, taken as a user meets each page (each step checks the page shows
// what the README says). `make screenshots` writes them to docs/screenshots; other runs to a
// scratch directory, so a test run leaves the work tree as it was.
const dir = process.env.OSCAR_SCREENSHOTS_DIR ?? path.join(os.tmpdir(), 'oscar-screenshots');

test('the pages the README shows', async ({ page, request }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await api.createService(request, {
    name: 'thumbnails',
    image: 'docker.io/library/alpine:3.20',
    script: [
      'echo "resizing $(basename "$INPUT_FILE_PATH")"',
      'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/thumbnail-$(basename "$INPUT_FILE_PATH").txt"',
      'echo "done"',
      '',
    ].join('\n'),
    input: [{ path: 'thumbnails/in' }],
    output: [{ path: 'thumbnails/out' }],
  });
  for (const body of ['{"photo": 1}', '{"photo": 2}', '{"photo": 3}']) {
    await api.queueJob(request, 'thumbnails', body);
  }
  const shot = (name: string) => page.screenshot({ path: path.join(dir, `${name}.png`) });

  await signIn(page, '/services?q=thumbnails');
  await expect(page.getByRole('row', { name: /thumbnails/ }).getByTestId('job-counts')).toHaveText(/^3\b/, { timeout: 30_000 });
  // The last day at a glance, above the list.
  await page.reload();
  await expect(page.getByTestId('glance').getByTestId('success-rate')).toContainText(/\d+ of \d+ runs/);
  await shot('services');

  await page.goto('/services/thumbnails');
  await hydrated(page);
  await expect(page.locator('tr[data-state="succeeded"]')).toHaveCount(3, { timeout: 30_000 });
  await page.reload();
  await expect(page.getByTestId('glance').getByTestId('success-rate')).toContainText('3 of 3 runs');
  await shot('service');

  await page.locator('tr[data-job] a').first().click();
  await expect(page.getByTestId('log-status')).toHaveText('finished');
  await expect(page.getByTestId('log')).toContainText('done');
  await shot('job');

  await page.goto('/buckets/thumbnails?prefix=out%2F');
  await hydrated(page);
  await expect(page.locator('tr[data-key^="out/"]')).toHaveCount(3);
  // A row's menu open.
  await page.locator('tr[data-key^="out/"]').first().getByRole('button', { name: /^Actions for/ }).click();
  await shot('bucket');

  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto('/jobs');
  await hydrated(page);
  await expect(page.getByTestId('all-jobs').locator('tr[data-job]').first()).toBeVisible();
  await shot('jobs-dark');

  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto('/new-service');
  await hydrated(page);
  const gallery = page.getByTestId('examples');
  await gallery.getByText('Start from an example').click();
  const workflow = gallery.locator('li[data-example="word-count-workflow.yaml"]');
  await expect(workflow).toContainText('word-split, word-tally');
  await shot('examples');

  await workflow.getByRole('button', { name: 'Create' }).click();
  await expect(page).toHaveURL(/\/services\/word-split$/);
  await page.goto('/services');
  await hydrated(page);
  const graph = page.getByTestId('workflow');
  await expect(graph.locator('g.workflow-node[data-service="word-tally"]')).toBeVisible();
  await graph.screenshot({ path: path.join(dir, 'workflow.png') });
});
