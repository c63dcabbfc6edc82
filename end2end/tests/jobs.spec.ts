import { test, expect, signIn, api } from './fixtures';

// A file that reaches the service becomes a job the page shows without a reload; its log
// streams in; "Run now" answers with the output.
test('jobs appear live, their logs stream, and Run now shows the result', async ({ page, request }) => {
  const service = {
    name: 'jobs-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: [
      'echo "working on $(basename "$INPUT_FILE_PATH")"',
      'sleep 1',
      'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/result.txt"',
      'echo "done"',
      '',
    ].join('\n'),
    input: [{ path: 'jobs-e2e/in' }],
    output: [{ path: 'jobs-e2e/out' }],
  };
  await api.createService(request, service);
  const token = (await (await api.getService(request, 'jobs-e2e')).json()).token;

  await signIn(page, '/services/jobs-e2e');
  await expect(page.getByTestId('no-jobs')).toBeVisible();

  // Queued from outside the page (what MinIO, oscar-cli or a script does).
  const queued = await request.post('/job/jobs-e2e', {
    headers: { Authorization: `Bearer ${token}` },
    data: '{"hello": "world"}',
  });
  expect(queued.status(), await queued.text()).toBe(201);
  const job = (await queued.json()).job_name as string;

  // Pushed to the page: the row appears and reaches Succeeded with no reload.
  const row = page.locator(`tr[data-job="${job}"]`);
  await expect(row).toBeVisible();
  await row.getByRole('button', { name: job }).click();
  await expect(page.getByTestId('log')).toContainText('working on event-file-');
  await expect(row).toHaveAttribute('data-state', 'succeeded', { timeout: 30_000 });
  await expect(page.getByTestId('log')).toContainText('done');
  await expect(page.getByTestId('log-status')).toHaveText('finished');
  await expect(page.getByRole('button', { name: /^Succeeded/ })).toContainText('1');

  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Download log' }).click();
  const log = await (await download).path();
  expect(require('fs').readFileSync(log, 'utf8')).toMatch(/^\d{4}-\d\d-\d\dT\S+ working on event-file-/m);

  // Run now: the single output file comes back and is shown as text.
  await page.getByLabel('Input', { exact: true }).fill('{"shout": "quietly"}');
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await expect(page.getByTestId('run-output')).toHaveText('{"SHOUT": "QUIETLY"}', { timeout: 30_000 });
  // The synchronous run is in the history too.
  await expect(page.locator('tr[data-job] td', { hasText: 'sync' })).toBeVisible();

  // Finished jobs can be deleted with their logs, once confirmed (Escape cancels).
  await row.getByRole('button', { name: 'Delete' }).click();
  const dialog = page.getByRole('alertdialog', { name: 'Confirm job deletion' });
  await expect(dialog.getByTestId('jobs-delete-summary')).toHaveText(`Delete job ${job} and its log?`);
  await expect(dialog.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);
  await expect(row).toHaveCount(1);
  await row.getByRole('button', { name: 'Delete' }).click();
  await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(row).toHaveCount(0);

  // The Jobs page lists every service's jobs, linked to their service.
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  const all = page.getByTestId('all-jobs');
  await expect(all.locator('tr[data-state="succeeded"]').first()).toBeVisible();
  await all.getByRole('link', { name: 'jobs-e2e' }).first().click();
  await expect(page).toHaveURL(/\/services\/jobs-e2e$/);
});
