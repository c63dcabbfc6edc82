import { execSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { test, expect, signIn, hydrated, api, ADMIN, PASSWORD } from './fixtures';

// Issue 23: what a new user trips over first, each reproduced as the user meets it.

test('signing in from the address the README gives lands on the dashboard', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/login\?next=/);
  await hydrated(page);
  await page.getByLabel('Username').fill(ADMIN);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/services$/);
  await expect(page.getByRole('heading', { name: 'Services', exact: true, level: 1 })).toBeVisible();
  await expect(page.getByText('Page not found')).toHaveCount(0);
});

test('creating a service with a taken name is refused and changes nothing', async ({ page, request, expectedErrors }) => {
  expectedErrors.allow(/status of 409/);
  await api.createService(request, {
    name: 'taken-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: 'echo original\n',
    memory: '512Mi',
    input: [{ path: 'taken-e2e/in' }],
  });
  await signIn(page, '/new-service');
  await page.getByLabel('Name', { exact: true }).fill('taken-e2e');
  await page.getByLabel('Image').fill('docker.io/library/alpine:3.20');
  await page.getByLabel('Input folders (bucket/folder, one per line)').fill('taken-other-e2e/in');
  await page.locator('.editor textarea').fill('echo replaced\n');
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByRole('alert')).toContainText('a service named "taken-e2e" already exists');
  await expect(page).toHaveURL(/\/new-service$/);

  // The YAML tab creates too, unless updates are asked for.
  await page.getByRole('tab', { name: 'YAML' }).click();
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByRole('alert')).toContainText('a service named "taken-e2e" already exists');

  const stored = await (await api.getService(request, 'taken-e2e')).json();
  expect(stored.script).toBe('echo original\n');
  expect(stored.memory).toBe('512Mi');
  expect(stored.input[0].path).toBe('taken-e2e/in');
  const buckets = await request.get('/system/buckets', {
    headers: { Authorization: 'Basic ' + Buffer.from(`${ADMIN}:${PASSWORD}`).toString('base64') },
  });
  expect(await buckets.text()).not.toContain('taken-other-e2e');
});

test("a new service's folders are one click away and listed as folders", async ({ page, request }) => {
  await api.createService(request, {
    name: 'folders-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: 'true\n',
    input: [{ path: 'folders-e2e/in' }],
    output: [{ path: 'folders-e2e/out' }],
  });
  await signIn(page, '/services/folders-e2e');
  await page.getByTestId('inputs').getByRole('link', { name: /folders-e2e\/in/ }).click();
  await expect(page).toHaveURL(/\/buckets\/folders-e2e\?prefix=in%2F$/);
  await expect(page.getByTestId('input-notice')).toContainText('starts a job of folders-e2e');

  // The bucket's top level shows both (empty) folders.
  await page.goto('/buckets/folders-e2e');
  const objects = page.getByTestId('objects');
  await expect(objects.locator('tr[data-folder="in/"]')).toBeVisible();
  await expect(objects.locator('tr[data-folder="out/"]')).toBeVisible();

  // Enter in "New folder" creates it.
  await hydrated(page);
  await page.getByLabel('New folder').fill('made');
  await page.getByLabel('New folder').press('Enter');
  await expect(objects.locator('tr[data-folder="made/"]')).toBeVisible();

  // And in "New bucket".
  await page.goto('/buckets');
  await hydrated(page);
  await page.getByLabel('New bucket').fill('entered-e2e');
  await page.getByLabel('New bucket').press('Enter');
  await expect(page.locator('tr[data-bucket="entered-e2e"]')).toBeVisible();
});

test('an empty file previews as empty', async ({ page, request }) => {
  await api.createBucket(request, 'empty-e2e');
  await signIn(page, '/buckets/empty-e2e');
  await hydrated(page);
  await page.locator('input[name="files"]').setInputFiles([
    { name: 'nothing.txt', mimeType: 'text/plain', buffer: Buffer.alloc(0) },
  ]);
  const row = page.locator('tr[data-key="nothing.txt"]');
  await expect(row).toBeVisible({ timeout: 30_000 });
  await row.getByRole('button', { name: 'nothing.txt', exact: true }).click();
  await expect(page.getByTestId('preview-empty')).toHaveText('This file is empty.');
  await expect(page.getByTestId('preview')).not.toContainText('internal error');
});

test('Run now sends text as typed and says when there is no output', async ({ page, request }) => {
  await api.createService(request, {
    name: 'echo-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: 'cat "$INPUT_FILE_PATH"\n',
  });
  await signIn(page, '/services/echo-e2e');
  await hydrated(page);
  const invoke = page.getByTestId('invoke');
  // "test" is valid base64; it must reach the script, and come back, as the word.
  await invoke.getByLabel('Input', { exact: true }).fill('test');
  await invoke.getByRole('button', { name: 'Run', exact: true }).click();
  await expect(invoke.getByTestId('run-output')).toHaveText('test', { timeout: 30_000 });

  await invoke.getByLabel('JSON').check();
  await invoke.getByLabel('Input', { exact: true }).fill('{"not json"');
  await invoke.getByRole('button', { name: 'Run', exact: true }).click();
  await expect(invoke.getByRole('alert')).toContainText('The input is not JSON');

  await invoke.getByLabel('Text').check();
  await invoke.getByLabel('Input', { exact: true }).fill('');
  await invoke.getByRole('button', { name: 'Run', exact: true }).click();
  await expect(invoke.getByTestId('run-empty')).toBeVisible({ timeout: 30_000 });
});

test('deleting asks first, says what goes, and can keep the buckets', async ({ page, request }) => {
  await api.createService(request, {
    name: 'keep-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: 'true\n',
    input: [{ path: 'keep-e2e/in' }],
  });
  await api.queueJob(request, 'keep-e2e', '"a"');
  await api.queueJob(request, 'keep-e2e', '"b"');
  await signIn(page, '/services/keep-e2e');
  const rows = page.locator('tr[data-job]');
  await expect(page.locator('tr[data-state="succeeded"]')).toHaveCount(2, { timeout: 30_000 });

  // "Delete finished" counts what goes and waits for the answer.
  await page.getByRole('button', { name: 'Delete finished' }).click();
  const jobsDialog = page.getByRole('alertdialog', { name: 'Confirm job deletion' });
  await expect(jobsDialog.getByTestId('jobs-delete-summary')).toContainText('the 2 finished job(s)');
  await expect(jobsDialog.getByTestId('jobs-delete-summary')).toContainText('2 succeeded, 0 failed');
  await jobsDialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(rows).toHaveCount(2);
  await page.getByRole('button', { name: 'Delete finished' }).click();
  await jobsDialog.getByRole('button', { name: 'Delete', exact: true }).click();
  await expect(rows).toHaveCount(0);

  // The service goes; its bucket and folders stay when asked.
  await page.getByRole('button', { name: 'Delete service…' }).click();
  const dialog = page.getByRole('alertdialog', { name: 'Confirm deletion' });
  await expect(dialog.getByTestId('deletion-plan')).toContainText('keep-e2e');
  await dialog.getByRole('button', { name: 'Delete the service only' }).click();
  await expect(page).toHaveURL(/\/services$/);
  expect((await api.getService(request, 'keep-e2e')).status()).toBe(404);
  await page.goto('/buckets/keep-e2e');
  await expect(page.getByTestId('objects').locator('tr[data-folder="in/"]')).toBeVisible();
});

test.describe('in a time zone other than UTC', () => {
  test.use({ timezoneId: 'Asia/Kolkata' });

  test('times show in local time with how long ago, UTC on hover', async ({ page, request }) => {
    await api.createService(request, { name: 'clock-e2e', image: 'docker.io/library/alpine:3.20', script: 'true\n' });
    await api.queueJob(request, 'clock-e2e');
    await signIn(page, '/services/clock-e2e');
    const time = page.locator('tr[data-job] time').first();
    await expect(time).toHaveText(/ago\)$|just now\)$/);
    const utc = (await time.getAttribute('datetime'))!;
    expect(await time.getAttribute('title')).toBe(utc.replace('T', ' ').replace('Z', ' UTC'));
    // India is 5 h 30 min ahead of UTC, all year.
    const local = new Date(Date.parse(utc) + 330 * 60_000).toISOString().slice(0, 19).replace('T', ' ');
    await expect(time).toHaveText(new RegExp(`^${local} \\(`));
  });
});

test.describe('on a phone', () => {
  test.use({ viewport: { width: 390, height: 844 } });

  test('every page fits the screen: no sideways scrolling, a compact header', async ({ page, request }) => {
    await api.createService(request, {
      name: 'phone-e2e',
      image: 'docker.io/library/alpine:3.20',
      script: 'echo "a rather long line of output that would not fit a phone"\n',
      input: [{ path: 'phone-e2e/in' }],
      output: [{ path: 'phone-e2e/out' }],
    });
    await api.queueJob(request, 'phone-e2e');
    await signIn(page, '/services');
    for (const path of ['/services', '/services/phone-e2e', '/new-service', '/buckets', '/buckets/phone-e2e', '/jobs', '/info']) {
      await page.goto(path);
      await hydrated(page);
      const { scrollWidth, innerWidth } = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
      }));
      expect(scrollWidth, `${path} scrolls sideways`).toBeLessThanOrEqual(innerWidth);
      const header = await page.getByRole('navigation', { name: 'Main' }).boundingBox();
      expect(header!.height, `${path}: the header's height`).toBeLessThan(844 / 8);
    }
    await page.goto('/services');
    const button = await page.getByRole('link', { name: 'New service' }).boundingBox();
    expect(button!.x + button!.width).toBeLessThanOrEqual(390);
  });
});

test('keyboard users skip the navigation', async ({ page }) => {
  await signIn(page, '/services');
  await page.keyboard.press('Tab');
  const skip = page.getByRole('link', { name: 'Skip to content' });
  await expect(skip).toBeFocused();
  await expect(skip).toBeInViewport();
  await page.keyboard.press('Enter');
  await expect(page.locator('main#main')).toBeFocused();
});

test('job counts and job outputs appear without a reload', async ({ page, request }) => {
  await api.createService(request, {
    name: 'live-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: 'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n',
    input: [{ path: 'live-e2e/in' }],
    output: [{ path: 'live-e2e/out' }],
  });
  const queue = () => api.queueJob(request, 'live-e2e');
  await signIn(page, '/services?q=live-e2e');
  await hydrated(page);
  const counts = page.getByRole('row', { name: /live-e2e/ }).getByTestId('job-counts');
  await expect(counts).toHaveText('0');
  await queue();
  await expect(counts).toHaveText(/^1\b/, { timeout: 30_000 });

  await page.goto('/buckets/live-e2e?prefix=out%2F');
  await hydrated(page);
  const outputs = page.locator('tr[data-key^="out/"]');
  await expect(outputs).toHaveCount(1, { timeout: 30_000 });
  await queue();
  await expect(outputs).toHaveCount(2, { timeout: 30_000 });
});

test('a long job list comes a page at a time', async ({ page, request }) => {
  await api.createService(request, {
    name: 'many-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: 'true\n',
  });
  await Promise.all(Array.from({ length: 55 }, () => api.queueJob(request, 'many-e2e')));
  await signIn(page, '/services/many-e2e');
  await hydrated(page);
  const rows = page.getByTestId('jobs-table').locator('tr[data-job]');
  await expect(rows).toHaveCount(50);
  const pages = page.getByRole('navigation', { name: 'Pages' });
  await expect(pages.getByRole('button', { name: '← Newer' })).toBeDisabled();
  await pages.getByRole('button', { name: 'Older →' }).click();
  await expect(rows).toHaveCount(5);
  await expect(pages).toContainText('Page 2');
  await expect(pages.getByRole('button', { name: 'Older →' })).toBeDisabled();
  await pages.getByRole('button', { name: '← Newer' }).click();
  await expect(rows).toHaveCount(50);
});

test('the dashboard follows the system between light and dark', async ({ page }) => {
  const colours = () =>
    page.evaluate(() => [
      getComputedStyle(document.documentElement).backgroundColor,
      getComputedStyle(document.body).color,
    ]);
  await page.emulateMedia({ colorScheme: 'dark' });
  await signIn(page, '/services');
  const [background, text] = await colours();
  expect(background).toBe('rgb(14, 20, 29)');
  expect(text).toBe('rgb(226, 232, 240)');
  await page.emulateMedia({ colorScheme: 'light' });
  const [lightBackground, lightText] = await colours();
  expect(lightBackground).toBe('rgb(245, 247, 250)');
  expect(lightText).toBe('rgb(28, 36, 48)');
});

test('the service page has snippets to call it from code, and they work', async ({ page, request }) => {
  await api.createService(request, {
    name: 'snippet-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: 'cat "$INPUT_FILE_PATH"\n',
    input: [{ path: 'snippet-e2e/in' }],
  });
  await signIn(page, '/services/snippet-e2e');
  await hydrated(page);
  const origin = new URL(page.url()).origin;
  const snippet = page.getByTestId('snippet');
  await expect(snippet).toContainText(`${origin}/run/snippet-e2e`);
  await expect(snippet).toContainText('<token: press Reveal token>');
  await page.getByRole('button', { name: 'Reveal token' }).click();
  const token = (await page.getByTestId('token').textContent())!;
  await expect(snippet).toContainText(`Bearer ${token}`);

  // The curl commands, run as copied: the synchronous one answers with the script's output.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snippet-'));
  fs.writeFileSync(path.join(dir, 'input.txt'), 'hello from a snippet');
  const ran = execSync((await snippet.textContent())!, { cwd: dir, shell: '/bin/bash' }).toString();
  expect(ran).toContain('hello from a snippet');
  expect(ran).toContain('snippet-e2e-');

  await page.getByRole('tab', { name: 'oscar-cli' }).click();
  await expect(snippet).toContainText(`oscar-cli service run snippet-e2e --endpoint ${origin} --token ${token}`);
  await expect(snippet).toContainText(`oscar-cli cluster add oscar ${origin} ${ADMIN} --password-stdin`);
  await expect(snippet).toContainText('oscar-cli service put-file snippet-e2e input.txt');
  await page.getByRole('tab', { name: 'Python (oscar-python)' }).click();
  await expect(snippet).toContainText(`"endpoint": "${origin}"`);
  await expect(snippet).toContainText(`"user": "${ADMIN}"`);
});

test('Create waits for the page to be ready, so nothing typed is lost', async ({ page, expectedErrors }) => {
  expectedErrors.allow(/ERR_FAILED|wasm|WebAssembly|Failed to fetch/);
  await signIn(page, '/services');
  // The browser has not run the page's code yet (here: never will).
  await page.route('**/*.wasm', (route) => route.abort());
  await page.goto('/new-service');
  const name = page.getByLabel('Name', { exact: true });
  await name.fill('early-e2e');
  await expect(page.getByRole('button', { name: 'Create' })).toBeDisabled();
  await name.press('Enter');
  await expect(page).toHaveURL(/\/new-service$/);
  await expect(name).toHaveValue('early-e2e');
});
