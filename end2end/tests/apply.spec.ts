import * as path from 'path';
import * as fs from 'fs';
import { test, expect, signIn } from './fixtures';

const fixtures = path.resolve(__dirname, '../../fixtures/fdl');

test('the two-service workflow FDL is pasted and applied, then both services are listed', async ({ page }) => {
  await signIn(page, '/services');
  await page.getByRole('link', { name: 'New service' }).click();
  await expect(page).toHaveURL(/\/new-service$/);
  await page.getByRole('tab', { name: 'YAML' }).click();
  await page.getByLabel('FDL (YAML)').fill(fs.readFileSync(path.join(fixtures, 'mask-workflow.yaml'), 'utf8'));
  await page.getByRole('button', { name: 'Apply' }).click();
  const result = page.getByRole('status');
  await expect(result).toContainText('Created blurry-faces');
  await expect(result).toContainText('Created mask-detector');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Services' }).click();
  await expect(page.getByRole('row', { name: /blurry-faces/ })).toContainText('mask-workflow/blurred');
  await expect(page.getByRole('row', { name: /mask-detector/ })).toContainText('mask-workflow/output');
});

test('an FDL and the script it names are loaded from files', async ({ page }) => {
  await signIn(page, '/new-service');
  await page.getByRole('tab', { name: 'YAML' }).click();
  await page.getByLabel('Load FDL file').setInputFiles(path.join(fixtures, 'grayify.yaml'));
  await expect(page.getByLabel('FDL (YAML)')).toHaveValue(/name: grayify/);
  await page.getByLabel('Load script file').setInputFiles(path.join(fixtures, 'script.sh'));
  await expect(page.getByLabel('Script file name')).toHaveValue('script.sh');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByRole('status')).toContainText('Created grayify');
  await page.getByRole('status').getByRole('link', { name: 'grayify' }).click();
  await expect(page.getByTestId('memory')).toHaveText('1Gi');
  await expect(page.locator('pre.script')).toContainText('-type Grayscale');
});

// Issue 23.11: each service of a workflow names its own script file; all of them load at once.
test('an FDL whose services each name a script file applies with all the files loaded', async ({ page }) => {
  await signIn(page, '/new-service');
  await page.getByRole('tab', { name: 'YAML' }).click();
  const step = (name: string, script: string, input: string) => [
    '  - local:',
    `      name: ${name}`,
    '      image: docker.io/library/alpine:3.20',
    `      script: ${script}`,
    '      input:',
    '      - storage_provider: minio.default',
    `        path: ${input}`,
  ];
  const fdl = ['functions:', '  oscar:', ...step('multi-first', 'first.sh', 'multi/in'), ...step('multi-second', 'second.sh', 'multi/middle')];
  await page.getByLabel('FDL (YAML)').fill(fdl.join('\n') + '\n');
  await page.getByLabel('Load more script files').setInputFiles([
    { name: 'first.sh', mimeType: 'text/plain', buffer: Buffer.from('#!/bin/sh\necho first step\n') },
    { name: 'second.sh', mimeType: 'text/plain', buffer: Buffer.from('#!/bin/sh\necho second step\n') },
  ]);
  const loaded = page.getByTestId('script-files').getByRole('listitem');
  await expect(loaded).toHaveCount(2);
  await expect(loaded.filter({ hasText: 'second.sh' })).toContainText('(2 lines)');
  await page.getByRole('button', { name: 'Apply' }).click();
  const result = page.getByRole('status');
  await expect(result).toContainText('Created multi-first');
  await expect(result).toContainText('Created multi-second');
  await result.getByRole('link', { name: 'multi-second' }).click();
  await expect(page.locator('pre.script')).toContainText('echo second step');
});

test('a bad FDL shows the path of the field to fix', async ({ page, expectedErrors }) => {
  expectedErrors.allow(/Failed to load resource: the server responded with a status of 400/);
  await signIn(page, '/new-service');
  await page.getByRole('tab', { name: 'YAML' }).click();
  const bad = fs.readFileSync(path.join(fixtures, 'text-transformer.yaml'), 'utf8').replace('memory: 256Mi', 'memory: 12X');
  await page.getByLabel('FDL (YAML)').fill(bad);
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByRole('alert')).toContainText('functions.oscar[0].local.memory: "12X" is not a Kubernetes quantity');
});

test('the Form and YAML tabs show the same service both ways', async ({ page, request }) => {
  await signIn(page, '/new-service');
  await page.getByLabel('Name', { exact: true }).fill('sync-e2e');
  await page.getByLabel('Image').fill('docker.io/library/alpine:3.20');
  await page.getByLabel('Memory').fill('512Mi');
  await page.getByLabel('Input folders (bucket/folder, one per line)').fill('sync-e2e/in');

  // Form → YAML: the FDL describes what the form holds.
  await page.getByRole('tab', { name: 'YAML' }).click();
  const yaml = page.getByLabel('FDL (YAML)');
  await expect(yaml).toHaveValue(/name: sync-e2e/);
  await expect(yaml).toHaveValue(/memory: 512Mi/);
  await expect(yaml).toHaveValue(/path: sync-e2e\/in/);

  // YAML → Form: an edit in the FDL shows up in the form.
  await yaml.fill((await yaml.inputValue()).replace('memory: 512Mi', 'memory: 1Gi'));
  await page.getByRole('tab', { name: 'Form' }).click();
  await expect(page.getByLabel('Memory')).toHaveValue('1Gi');
  await expect(page.getByLabel('Name', { exact: true })).toHaveValue('sync-e2e');

  // An FDL that cannot be read leaves the form as it was and says why.
  await page.getByRole('tab', { name: 'YAML' }).click();
  await page.getByLabel('FDL (YAML)').fill('functions: [unclosed');
  await page.getByRole('tab', { name: 'Form' }).click();
  await expect(page.getByTestId('sync-note')).toContainText('not valid YAML');
  await expect(page.getByLabel('Memory')).toHaveValue('1Gi');

  // The form checks the fields on Create (the drafts had no script yet).
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.locator('[data-field="script"]')).toContainText('is required');
  await page.locator('.editor textarea').fill('echo hi');
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page).toHaveURL(/\/services\/sync-e2e$/);
  await expect(page.getByTestId('memory')).toHaveText('1Gi');
});
