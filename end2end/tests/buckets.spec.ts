import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { test, expect, signIn, hydrated, api, ADMIN } from './fixtures';

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
  await page.locator('tr[data-key="out/été.txt"]').getByRole('button', { name: 'été.txt' }).click();
  await expect(page.getByTestId('preview-text')).toHaveText('THIRD FILE');
  await page.locator('tr[data-key="out/été.txt"]').getByRole('button', { name: 'Share link' }).click();
  const link = page.locator('tr[data-key="out/été.txt"]').getByTestId('share-link');
  await expect(link).toHaveAttribute('href', /X-Amz-Signature=/);
  const shared = await request.get((await link.getAttribute('href'))!);
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
    const row = page.locator(`tr[data-key="${key}"]`);
    await row.getByRole('button', { name: 'Share link' }).click();
    await expect(row.getByTestId('share-link')).toHaveAttribute('href', /X-Amz-Signature=/);
    links[key] = (await row.getByTestId('share-link').getAttribute('href'))!;
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
