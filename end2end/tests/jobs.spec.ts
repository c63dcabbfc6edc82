import { test, expect, signIn, api } from './fixtures';

// A file that reaches the service becomes a job the page shows without a reload; its own page
// streams its log in; "Run now" answers with the output.
test('jobs appear live, their logs stream, and Run now shows the result', async ({ page, request }) => {
  const service = {
    name: 'jobs-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: [
      'echo "working on $(basename "$INPUT_FILE_PATH")"',
      // Apart in time: two pipes written within microseconds may be read either way round.
      'sleep 0.2',
      'echo "trouble ahead" >&2',
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
  // Issue 23.4: the job opens its own page, where the log is in view (not below the table).
  await row.getByRole('link', { name: job }).click();
  await expect(page).toHaveURL(new RegExp(`/services/jobs-e2e/jobs/${job}$`));
  await expect(page.getByRole('heading', { name: `Job ${job}` })).toBeVisible();
  await expect(page.getByTestId('log')).toContainText('working on event-file-');
  await expect(page.getByTestId('log')).toBeInViewport();
  // stderr is marked, in its place among the lines; times show on request.
  const lines = page.getByTestId('log').locator('.log-line');
  await expect(lines.filter({ hasText: 'trouble ahead' })).toHaveClass(/stderr/);
  await expect(lines.filter({ hasText: 'working on' })).not.toHaveClass(/stderr/);
  // The supervisor's own lines are the platform's, set apart from the script's.
  await expect(lines.filter({ hasText: 'oscar-supervisor:' }).first()).toHaveClass(/platform/);
  const texts = await lines.allTextContents();
  const working = texts.findIndex((t) => t.startsWith('working on'));
  expect(texts[working + 1], texts.join('')).toBe('trouble ahead\n');
  await expect(page.getByTestId('log').locator('.log-time')).toHaveCount(0);
  await page.getByLabel('Times').check();
  await expect(page.getByTestId('log').locator('.log-time').first()).toHaveText(/^\d{4}-\d\d-\d\dT\S+Z $/);
  await expect(page.getByTestId('job-state')).toHaveText('Succeeded', { timeout: 30_000 });
  await expect(page.getByTestId('log')).toContainText('done');
  await expect(page.getByTestId('log-status')).toHaveText('finished');
  // The record follows the job live: its state above, exit code, duration.
  await expect(page.getByTestId('job-exit')).toHaveText('0');
  await expect(page.getByTestId('job-duration')).toHaveText(/\d/);
  // Search keeps the lines with the text; the first error is a click away.
  await page.getByLabel('Search the log').fill('TROUBLE');
  await expect(page.getByTestId('log-matches')).toHaveText(/^1 of \d+ lines$/);
  await expect(lines.filter({ hasText: 'working on' })).toBeHidden();
  await page.getByLabel('Search the log').fill('');
  await expect(lines.filter({ hasText: 'working on' })).toBeVisible();
  await page.getByRole('button', { name: 'First error' }).click();
  await expect(page.getByTestId('log').getByText('trouble ahead')).toBeInViewport();

  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Download log' }).click();
  const log = await (await download).path();
  const downloaded = require('fs').readFileSync(log, 'utf8');
  expect(downloaded).toMatch(/^\d{4}-\d\d-\d\dT\S+ working on event-file-/m);
  expect(downloaded).toMatch(/^\d{4}-\d\d-\d\dT\S+Z trouble ahead$/m);

  // Run again: a new job on the same input, on its own page.
  await page.getByRole('button', { name: 'Run again' }).click();
  await expect(page).toHaveURL(/\/services\/jobs-e2e\/jobs\/jobs-e2e-/);
  await expect(page).not.toHaveURL(new RegExp(`/jobs/${job}$`));
  await expect(page.getByTestId('job-state')).toHaveText('Succeeded', { timeout: 30_000 });
  await expect(page.getByTestId('log')).toContainText('done');

  // Back to the service through the breadcrumbs.
  await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'jobs-e2e' }).click();
  await expect(page).toHaveURL(/\/services\/jobs-e2e$/);
  await expect(page.getByRole('button', { name: /^Succeeded/ })).toContainText('2');

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

  // The Jobs page lists every service's jobs, linked to their service and their own page,
  // and filters them.
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  const all = page.getByTestId('all-jobs');
  await expect(all.locator('tr[data-state="succeeded"]').first()).toBeVisible();
  await page.getByLabel('State').selectOption('failed');
  await expect(all.locator('tr[data-job]').filter({ hasText: 'jobs-e2e' })).toHaveCount(0);
  await page.getByLabel('State').selectOption('succeeded');
  await page.getByLabel('Service').fill('jobs-e2e');
  await page.getByLabel('Service').press('Enter');
  await page.getByLabel('Created').selectOption({ label: 'Last hour' });
  // The filtered page replaces the listing once it arrives: wait for it, not for any row.
  await expect
    .poll(async () => {
      const services = await all.locator('tr[data-job] td:first-child').allTextContents();
      return services.length > 0 && services.every((service) => service === 'jobs-e2e');
    })
    .toBe(true);
  await all.getByRole('link', { name: 'jobs-e2e' }).first().click();
  await expect(page).toHaveURL(/\/services\/jobs-e2e$/);
});

// The Jobs page's activity chart counts runs per day from the usage records, live.
test('the Jobs page charts the runs of the last two weeks', async ({ page, request }) => {
  await api.createService(request, {
    name: 'activity-e2e', image: 'docker.io/library/alpine:3.20', script: 'echo counted\n',
    input: [{ path: 'activity-e2e/in' }],
  });
  await signIn(page, '/jobs');
  const chart = page.getByTestId('activity');
  await expect(chart.locator('g[data-runs]')).toHaveCount(14);
  const today = chart.locator('g[data-runs]').last();
  const before = Number(await today.getAttribute('data-runs'));
  await api.queueJob(request, 'activity-e2e');
  await expect(today).toHaveAttribute('data-runs', String(before + 1), { timeout: 30_000 });
  await expect(chart).toContainText('runs in 14 days');
  await expect(chart.getByRole('img')).toHaveAttribute('aria-label', /runs in 14 days/);
});

// Issue 23: the last 24 hours in pictures, on the home page for everything the user sees and on
// a service's page for it alone: runs per hour, success rate, durations, storage per bucket.
test('the home page and a service page show the last day at a glance', async ({ page, request }) => {
  await api.createService(request, {
    name: 'glance-e2e', image: 'docker.io/library/alpine:3.20',
    script: 'grep -q fail "$INPUT_FILE_PATH" && exit 3\necho ok > "$TMP_OUTPUT_DIR/$JOB_UUID.txt"\n',
    input: [{ path: 'glance-e2e/in' }], output: [{ path: 'glance-e2e/out' }],
  });
  for (const body of ['"ok"', '"ok"', '"ok"', '"fail"']) await api.queueJob(request, 'glance-e2e', body);
  await signIn(page, '/services/glance-e2e');
  const glance = page.getByTestId('glance');
  await expect(async () => {
    await page.reload();
    await expect(glance.getByTestId('success-rate')).toContainText('3 of 4 runs', { timeout: 1000 });
  }).toPass({ timeout: 60_000 });
  await expect(glance.getByTestId('success-rate').locator('text')).toHaveText('75%');
  const hours = glance.getByTestId('runs-per-hour').locator('g');
  await expect(hours).toHaveCount(24);
  const sum = async (attribute: string) =>
    (await hours.evaluateAll((bars, a) => bars.map((b) => Number(b.getAttribute(a))), attribute)).reduce((x, y) => x + y, 0);
  expect(await sum('data-succeeded')).toBe(3);
  expect(await sum('data-failed')).toBe(1);
  await expect(glance.getByTestId('durations')).toContainText(/p50 ≤ \d/);
  const buckets = glance.getByTestId('storage');
  await expect(buckets.locator('li')).toHaveCount(1);
  await expect(buckets.locator('li[data-bucket="glance-e2e"]')).toContainText('9 B · 3 object(s)');

  // The home page adds up every service the user sees.
  await page.goto('/services');
  await expect(page.getByTestId('glance').locator('li[data-bucket="glance-e2e"]')).toBeVisible();
  await expect(page.getByTestId('glance').getByTestId('success-rate')).toContainText(/\d+ of \d+ runs/);
});

test('a running job is stopped from its page, after a confirmation', async ({ page, request }) => {
  await api.createService(request, {
    name: 'stop-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: 'echo started\nsleep 60\n',
    input: [{ path: 'stop-e2e/in' }],
    output: [{ path: 'stop-e2e/out' }],
  });
  const token = (await (await api.getService(request, 'stop-e2e')).json()).token;
  const queued = await request.post('/job/stop-e2e', { headers: { Authorization: `Bearer ${token}` }, data: '{}' });
  expect(queued.status(), await queued.text()).toBe(201);
  const job = (await queued.json()).job_name as string;

  await signIn(page, `/services/stop-e2e/jobs/${job}`);
  await expect(page.getByTestId('job-state')).toHaveText('Running', { timeout: 30_000 });
  await expect(page.getByTestId('log')).toContainText('started');
  await page.getByRole('button', { name: 'Stop' }).click();
  const dialog = page.getByRole('alertdialog', { name: 'Confirm stopping the job' });
  await expect(dialog).toContainText('its outputs are not uploaded');
  await dialog.getByRole('button', { name: 'Stop' }).click();
  // Followed live: the state and reason change without a reload.
  await expect(page.getByTestId('job-state')).toHaveText('Failed', { timeout: 15_000 });
  await expect(page.getByTestId('job-reason')).toHaveText('stopped by cluster_admin');
  await expect(page.getByTestId('toasts')).toContainText(`Job ${job} stopped`);
  await expect(page.getByRole('button', { name: 'Stop' })).toBeHidden();
  await expect(page.getByTestId('log')).toContainText('stopped by cluster_admin');
});
