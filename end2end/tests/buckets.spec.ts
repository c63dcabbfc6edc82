import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { test, expect, signIn, hydrated, api, ADMIN, PASSWORD } from './fixtures';
import { Page } from '@playwright/test';

/** Opens the menu of the row of `key` (a file, or a folder ending in `/`). */
async function openMenu(page: Page, key: string) {
  const row = page.locator(key.endsWith('/') ? `tr[data-folder="${key}"]` : `tr[data-key="${key}"]`);
  const name = key.replace(/\/$/, '').split('/').pop()!;
  await row.getByRole('button', { name: `Actions for ${name}` }).click();
  return row;
}

/** A share link of `key` made from its row's menu, valid for `amount` `unit` (1 hour unless told). */
async function shareLink(page: Page, key: string, amount?: string, unit?: string): Promise<string> {
  const row = await openMenu(page, key);
  await row.getByRole('button', { name: 'Share link…' }).click();
  const form = page.getByTestId('share-form');
  if (amount) await form.getByLabel('Link valid for').fill(amount);
  if (unit) await form.getByLabel('Expiry unit').selectOption(unit);
  await form.getByRole('button', { name: 'Create link' }).click();
  const link = form.getByTestId('share-link');
  await expect(link).toHaveAttribute('href', /X-Amz-Signature=/);
  return (await link.getAttribute('href'))!;
}

// Files and a folder dropped into a service's input folder upload with progress, start jobs,
// and their outputs can be previewed, shared and deleted, all without a reload.
test('uploads into a service input start jobs whose outputs preview in the browser @smoke', async ({ page, request }) => {
  await api.createService(request, {
    name: 'drop-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: 'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH")"\n',
    input: [{ path: 'drop-e2e/in' }],
    output: [{ path: 'drop-e2e/out' }],
  });

  await signIn(page, '/buckets');
  // The service's bucket is listed with the service that made it.
  const bucketRow = page.locator('tr[data-bucket="drop-e2e"]');
  await expect(bucketRow.getByRole('link', { name: 'drop-e2e' })).toHaveCount(2);
  await bucketRow.getByRole('link').first().click();
  await expect(page).toHaveURL(/\/buckets\/drop-e2e$/);
  await page.goto('/buckets/drop-e2e?prefix=in%2F');
  await expect(page.getByTestId('input-notice')).toContainText('starts a job of drop-e2e');
  // The picker's handler exists once the page is hydrated.
  await hydrated(page);

  // Three files through the picker, with spaces and unicode in their names.
  await page.locator('input[name="files"]').setInputFiles([
    { name: 'one.txt', mimeType: 'text/plain', buffer: Buffer.from('first file') },
    { name: 'two words.txt', mimeType: 'text/plain', buffer: Buffer.from('second file') },
    { name: 'été.txt', mimeType: 'text/plain', buffer: Buffer.from('third file') },
  ]);
  for (const key of ['in/one.txt', 'in/two words.txt', 'in/été.txt']) {
    await expect(page.locator(`li[data-upload="${key}"]`)).toHaveAttribute('data-state', 'done', { timeout: 30_000 });
    await expect(page.locator(`li[data-upload="${key}"]`)).toContainText('1 job(s) started');
  }
  await expect(page.getByTestId('overall-progress')).toContainText('100%');

  // A whole folder keeps its structure.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oscar-e2e-'));
  fs.mkdirSync(path.join(dir, 'batch', 'nested'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'batch', 'a.txt'), 'folder file a');
  fs.writeFileSync(path.join(dir, 'batch', 'nested', 'b.txt'), 'folder file b');
  await page.locator('input[name="folder-files"]').setInputFiles(path.join(dir, 'batch'));
  await expect(page.locator('li[data-upload="in/batch/nested/b.txt"]')).toHaveAttribute('data-state', 'done', { timeout: 30_000 });

  // Drag and drop onto the listing.
  const dataTransfer = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['dropped text'], 'dropped.txt', { type: 'text/plain' }));
    return dt;
  });
  await page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer });
  await expect(page.locator('li[data-upload="in/dropped.txt"]')).toHaveAttribute('data-state', 'done', { timeout: 30_000 });

  // The listing refreshed by itself: files and the uploaded folder are there.
  const objects = page.getByTestId('objects');
  await expect(objects.locator('tr[data-key="in/two words.txt"]')).toBeVisible();
  await expect(objects.locator('tr[data-folder="in/batch/"]')).toBeVisible();

  // Filter by name, then download a selection as one ZIP.
  await page.getByLabel('Filter by name').fill('two');
  await expect(objects.locator('tr[data-key="in/two words.txt"]')).toBeVisible();
  await expect(objects.locator('tr[data-key="in/one.txt"]')).toHaveCount(0);
  await page.getByLabel('Filter by name').fill('');
  await page.getByRole('checkbox', { name: 'Select one.txt' }).check();
  await page.getByRole('checkbox', { name: 'Select batch' }).check();
  const zipped = page.waitForEvent('download');
  await page.getByTestId('download-zip').click();
  const archive = fs.readFileSync((await (await zipped).path())!);
  expect(archive.subarray(0, 2).toString()).toBe('PK');
  expect(archive.includes(Buffer.from('batch/nested/b.txt'))).toBe(true);
  await page.getByRole('checkbox', { name: 'Select one.txt' }).uncheck();
  await page.getByRole('checkbox', { name: 'Select batch' }).uncheck();

  // Outputs of the jobs, previewed and shared.
  await page.getByRole('navigation', { name: 'Folder' }).getByRole('link', { name: 'drop-e2e' }).click();
  await page.goto('/buckets/drop-e2e?prefix=out%2F');
  await expect(async () => {
    await page.reload();
    await expect(page.locator('tr[data-key="out/été.txt"]')).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await page.locator('tr[data-key="out/été.txt"]').getByRole('button', { name: 'été.txt', exact: true }).click();
  await expect(page.getByTestId('preview-text')).toHaveText('THIRD FILE');
  const shared = await request.get(await shareLink(page, 'out/été.txt'));
  expect(await shared.text()).toBe('THIRD FILE');

  // Deleting a folder deletes what is in it; the confirmation says so.
  await page.goto('/buckets/drop-e2e?prefix=in%2F');
  await page.getByRole('checkbox', { name: 'Select batch' }).check();
  await page.getByRole('button', { name: 'Delete selected (1)' }).click();
  await expect(page.getByTestId('delete-summary')).toContainText('1 folder(s) with everything in them');
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
  await expect(page.locator('tr[data-folder="in/batch/"]')).toHaveCount(0);
  await expect(page.locator('tr[data-key="in/one.txt"]')).toBeVisible();
});

test('buckets are created and deleted from the Buckets page', async ({ page, expectedErrors }) => {
  // The refused name is a 400 from the server, which the browser logs.
  expectedErrors.allow(/status of 400/);
  await signIn(page, '/buckets');
  await page.getByLabel('New bucket').fill('Bad_Name');
  await page.getByRole('button', { name: 'Create bucket' }).click();
  await expect(page.getByText('bucket_name: may hold only lowercase letters')).toBeVisible();

  await page.getByLabel('New bucket').fill('made-e2e');
  await page.getByRole('button', { name: 'Create bucket' }).click();
  const row = page.locator('tr[data-bucket="made-e2e"]');
  await expect(row).toBeVisible();
  await expect(page.getByTestId('toasts')).toContainText('Bucket made-e2e created');
  // Issue 23.11: the admin's own bucket says so by the name they signed in with.
  await expect(row).toContainText(`${ADMIN} (you)`);

  await row.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('bucket-delete-summary')).toHaveText('Delete bucket made-e2e and the 0 object(s) in it?');
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
  await expect(row).toHaveCount(0);
  await expect(page.getByTestId('toasts')).toContainText('Bucket made-e2e deleted');
  // Gone after a few seconds.
  await expect(page.getByTestId('toasts')).not.toContainText('Bucket made-e2e', { timeout: 10_000 });
});

// Issue 20.6: a stored page never runs as one. Opened from its share link, an HTML file is a
// download; the same markup stored as .txt shows as text and as .pdf renders as a PDF or not
// at all. No script of it runs on the store's origin, the dashboard's site.
test('an uploaded HTML file opened from its share link does not run script', async ({ page, request }) => {
  await api.createBucket(request, 'pages-e2e');
  await signIn(page, '/buckets/pages-e2e');
  await hydrated(page);
  const markup = "<html><head><title>pwned</title></head><body><script>document.title = 'ran'; fetch('/?ran')</script>page</body></html>";
  await page.locator('input[name="files"]').setInputFiles([
    { name: 'page.html', mimeType: 'text/html', buffer: Buffer.from(markup) },
    { name: 'page.txt', mimeType: 'text/html', buffer: Buffer.from(markup) },
    { name: 'page.pdf', mimeType: 'text/html', buffer: Buffer.from(markup) },
  ]);
  for (const key of ['page.html', 'page.txt', 'page.pdf']) {
    await expect(page.locator(`li[data-upload="${key}"]`)).toHaveAttribute('data-state', 'done', { timeout: 30_000 });
  }
  const links: Record<string, string> = {};
  for (const key of ['page.html', 'page.txt', 'page.pdf']) {
    links[key] = await shareLink(page, key);
  }

  const opened = await page.context().newPage();
  const download = opened.waitForEvent('download');
  await opened.goto(links['page.html']).catch(() => {});
  expect((await download).suggestedFilename()).toBe('page.html');

  await opened.goto(links['page.txt']);
  await expect(opened.locator('body')).toContainText("document.title = 'ran'");
  expect(await opened.title()).not.toBe('ran');

  await opened.goto(links['page.pdf']).catch(() => {});
  await opened.waitForTimeout(500);
  expect(await opened.title()).not.toBe('ran');
  expect(await opened.title()).not.toBe('pwned');
});

// Issue 23: the bucket browser as MinIO Console users know it. Each row has an icon and a
// menu (download, share link for as long as wanted up to 7 days, copy path, details, delete);
// files dropped anywhere on the page upload; what an S3 client stores shows without a reload.
test('rows have menus and details; links last as long as asked; the listing is live', async ({ page, request }) => {
  await api.createBucket(request, 'browse-e2e');
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await signIn(page, '/buckets/browse-e2e');
  await page.locator('input[name="files"]').setInputFiles([
    { name: 'report.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2\n') },
    { name: 'archive.tar.gz', mimeType: 'application/gzip', buffer: Buffer.from('not really gzip') },
  ]);
  await expect(page.locator('li[data-upload="report.csv"]')).toHaveAttribute('data-state', 'done', { timeout: 30_000 });
  await page.getByLabel('New folder').fill('docs');
  await page.getByLabel('New folder').press('Enter');

  // Icons by kind.
  await expect(page.locator('tr[data-key="report.csv"] svg[data-kind="text"]')).toBeVisible();
  await expect(page.locator('tr[data-key="archive.tar.gz"] svg[data-kind="archive"]')).toBeVisible();
  await expect(page.locator('tr[data-folder="docs/"] svg[data-kind="folder"]')).toBeVisible();

  // Details: what the store knows of it, the uploader by name.
  let row = await openMenu(page, 'report.csv');
  await row.getByRole('button', { name: 'Details' }).click();
  const details = page.getByTestId('object-details');
  await expect(details).toContainText('text/csv');
  await expect(details).toContainText('8 B (8 bytes)');
  await expect(details.getByTestId('uploader')).toContainText(`${ADMIN} (you)`);
  await expect(details.locator('dd.mono').first()).toHaveText(/^[0-9a-f]{32}$/);
  await page.getByTestId('preview').getByRole('button', { name: 'Close' }).click();

  // Download: the file itself, saved, whatever its type.
  row = await openMenu(page, 'report.csv');
  const saved = page.waitForEvent('download');
  await row.getByRole('link', { name: 'Download' }).click();
  const download = await saved;
  expect(download.suggestedFilename()).toBe('report.csv');
  expect(fs.readFileSync((await download.path())!).toString()).toBe('a,b\n1,2\n');

  // Copy path: bucket and key, as FDL paths and oscar-cli write them.
  row = await openMenu(page, 'report.csv');
  await row.getByRole('button', { name: 'Copy path' }).click();
  await expect(row.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('browse-e2e/report.csv');
  // A click elsewhere closes the menu.
  await page.getByRole('heading', { name: 'Bucket browse-e2e' }).click();
  await expect(row.getByRole('button', { name: 'Copy path' })).toHaveCount(0);

  // A link valid for 90 minutes says so to the store; more than 7 days is refused before asking.
  const link = await shareLink(page, 'report.csv', '90', 'minutes');
  expect(new URL(link).searchParams.get('X-Amz-Expires')).toBe('5400');
  expect(await (await request.get(link)).text()).toBe('a,b\n1,2\n');
  const form = page.getByTestId('share-form');
  await form.getByLabel('Link valid for').fill('8');
  await form.getByLabel('Expiry unit').selectOption('days');
  await expect(form.getByTestId('expiry-error')).toHaveText('A link lasts from 1 minute to 7 days.');
  await expect(form.getByRole('button', { name: 'Create link' })).toBeDisabled();
  await form.getByLabel('Link valid for').fill('7');
  await expect(form.getByRole('button', { name: 'Create link' })).toBeEnabled();

  // Files dropped anywhere on the page upload into the folder shown.
  const dataTransfer = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['dropped on the heading'], 'anywhere.txt', { type: 'text/plain' }));
    return dt;
  });
  await page.getByRole('heading', { name: 'Bucket browse-e2e' }).dispatchEvent('drop', { dataTransfer });
  await expect(page.locator('li[data-upload="anywhere.txt"]')).toHaveAttribute('data-state', 'done', { timeout: 30_000 });
  await expect(page.locator('tr[data-key="anywhere.txt"]')).toBeVisible();
  // The listing reloaded; the share form stays open.
  await expect(form.getByLabel('Link valid for')).toHaveValue('7');
  await form.getByRole('button', { name: 'Close' }).click();
  await expect(form).toHaveCount(0);

  // What an S3 client stores (here through a presigned upload link) shows without a reload.
  const basic = { Authorization: 'Basic ' + Buffer.from(`${ADMIN}:${PASSWORD}`).toString('base64') };
  const presigned = await request.post('/system/buckets/browse-e2e/presign', {
    headers: basic, data: { object_key: 'from-a-client.txt', operation: 'upload' },
  });
  expect(presigned.status(), await presigned.text()).toBe(200);
  const put = await request.put((await presigned.json()).url, { data: 'stored by a client' });
  expect(put.status()).toBe(200);
  await expect(page.locator('tr[data-key="from-a-client.txt"]')).toBeVisible({ timeout: 10_000 });

  // Delete from the menu, after saying what goes; folders too.
  row = await openMenu(page, 'archive.tar.gz');
  await row.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('delete-summary')).toHaveText('archive.tar.gz will be deleted.');
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
  await expect(page.locator('tr[data-key="archive.tar.gz"]')).toHaveCount(0);
  row = await openMenu(page, 'docs/');
  await expect(row.getByRole('button', { name: 'Share link…' })).toHaveCount(0);
  await row.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('delete-summary')).toHaveText('The folder docs and everything in it will be deleted.');
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
  await expect(page.locator('tr[data-folder="docs/"]')).toHaveCount(0);
  await expect(page.locator('tr[data-key="report.csv"]')).toBeVisible();
});

// Issue 23: sharing a bucket is set from the Buckets page, and the user it names sees it.
test('a bucket is shared from the Buckets page with a user, who then sees it', async ({ page, request, browser }) => {
  await api.createBucket(request, 'shared-e2e');
  await api.createService(request, {
    name: 'shared-svc-e2e', image: 'docker.io/library/alpine:3.20', script: 'true',
    input: [{ path: 'shared-svc-e2e/in' }],
  });
  await signIn(page, '/buckets');
  // A service's bucket is shared as its service is: no button of its own.
  await expect(page.locator('tr[data-bucket="shared-svc-e2e"]').getByRole('button', { name: 'Sharing' })).toHaveCount(0);
  const row = page.locator('tr[data-bucket="shared-e2e"]');
  await expect(row.getByTestId('visibility')).toHaveText('private');
  await row.getByRole('button', { name: 'Sharing' }).click();
  const dialog = page.getByTestId('sharing-dialog');
  await dialog.getByLabel('Visibility').selectOption('restricted');
  await dialog.getByLabel('Allowed users (user ids, one per line; for restricted)').fill('bob@test\n\n');
  await dialog.getByRole('button', { name: 'Save sharing' }).click();
  await expect(dialog).toHaveCount(0);
  await expect(page.getByTestId('toasts')).toContainText('Sharing saved');
  await expect(row.getByTestId('visibility')).toHaveText('restricted: bob@test');

  // Bob sees it and may browse it, but not share or delete it.
  const bob = await browser.newPage();
  await bob.goto(new URL('/auth/login?login_hint=bob@test&next=/buckets', page.url()).href);
  await expect(bob).toHaveURL(/\/buckets$/);
  const seen = bob.locator('tr[data-bucket="shared-e2e"]');
  await expect(seen).toBeVisible();
  await expect(seen.getByRole('button')).toHaveCount(0);
  await bob.close();
});
