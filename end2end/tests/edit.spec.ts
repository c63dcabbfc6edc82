import { test, expect, signIn, hydrated, api } from './fixtures';

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
  await api.createService(request, service);

  await signIn(page, '/services/edit-e2e');
  await page.getByRole('link', { name: 'Edit', exact: true }).click();
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

  const stored = await (await api.getService(request, 'edit-e2e')).json();
  expect(stored.memory).toBe('2Gi');
  expect(stored.token).toMatch(/^[0-9a-f]{64}$/);
  expect(JSON.stringify(stored)).not.toContain('kept-e2e-secret');
});

test('the FDL download applies back unchanged', async ({ page, request }) => {
  const service = {
    name: 'export-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: '#!/bin/sh\necho "exported"\n',
    memory: '512Mi',
    environment: { variables: { GREETING: 'hello world' } },
    input: [{ path: 'export-e2e/in', suffix: ['.txt'] }],
    output: [{ path: 'export-e2e/out' }],
  };
  await api.createService(request, service);
  await signIn(page, '/services/export-e2e');
  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Download FDL' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toBe('export-e2e.yaml');
  const fs = await import('fs');
  const yaml = fs.readFileSync(await file.path(), 'utf8');
  expect(yaml).toContain('name: export-e2e');
  expect(yaml).not.toMatch(/token|owner/);

  // Applying the exported file (updates allowed) leaves the service as it was.
  await page.goto('/new-service');
  await page.getByRole('tab', { name: 'YAML' }).click();
  await page.getByLabel('FDL (YAML)').fill(yaml);
  await page.getByLabel('Update services that already exist').check();
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByRole('status')).toContainText('Updated export-e2e');
  const stored = await (await api.getService(request, 'export-e2e')).json();
  expect(stored.memory).toBe('512Mi');
  expect(stored.environment.variables.GREETING).toBe('hello world');
  expect(stored.input[0].suffix).toEqual(['.txt']);
});

test('a service is created through the form', async ({ page, request }) => {
  await signIn(page, '/new-service');
  await page.getByLabel('Image').fill('docker.io/library/alpine:3.20');
  await page.getByLabel('Input folders (bucket/folder, one per line)').fill('form-e2e/in');
  await page.getByLabel('Output folders (bucket/folder, one per line)').fill('form-e2e/out');
  await page.locator('.editor textarea').fill('#!/bin/sh\ncp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"\n');
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.locator('[data-field="name"]')).toContainText('is required');
  // Tied to its field for assistive technology, which takes the focus.
  const name = page.getByLabel('Name', { exact: true });
  await expect(name).toHaveAttribute('aria-invalid', 'true');
  await expect(name).toHaveAccessibleDescription(/is required/);
  await expect(name).toBeFocused();

  await page.getByLabel('Name', { exact: true }).fill('form-e2e');
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page).toHaveURL(/\/services\/form-e2e$/);
  // The toast outlives the navigation it came with.
  await expect(page.getByTestId('toasts')).toContainText('Service form-e2e created');
  await expect(page.getByTestId('memory')).toHaveText('256Mi');

  const stored = await (await api.getService(request, 'form-e2e')).json();
  expect(stored.input[0]).toMatchObject({ storage_provider: 'minio.default', path: 'form-e2e/in' });
  expect(stored.output[0].path).toBe('form-e2e/out');
});

test('access, variables, labels, annotations and new secrets are set through the form', async ({ page, request }) => {
  await api.createService(request, {
    name: 'access-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: '#!/bin/sh\necho hi\n',
    environment: { variables: { MODE: 'fast', DROP_ME: 'x' }, secrets: { API_KEY: 'kept-access-secret' } },
  });
  await signIn(page, '/services/access-e2e/edit');
  await page.getByLabel('Visibility').selectOption('restricted');
  await page.getByLabel('Allowed users (user ids, one per line; for restricted)').fill('alice@example.org\n\nbob@example.org');
  // Variables, labels and annotations are rows of a name and a value; a value may span lines.
  await expect(page.getByLabel('Variable 1 name')).toHaveValue('DROP_ME');
  await page.getByRole('button', { name: 'Remove Variable 1' }).click();
  await expect(page.getByLabel('Variable 1 name')).toHaveValue('MODE');
  await page.getByRole('button', { name: 'Add a variable' }).click();
  await page.getByLabel('Variable 2 name').fill('CERT');
  await page.getByLabel('Variable 2 value').fill('-----BEGIN-----\nabc=\n-----END-----');
  await page.getByRole('button', { name: 'Add an annotation' }).click();
  await page.getByLabel('Annotation 1 name').fill('note');
  await page.getByLabel('Annotation 1 value').fill('demo');
  await page.getByLabel('Output folders (bucket/folder, one per line)').fill('access-e2e/out suffix=.png,.jpg');
  await page.getByTestId('script-help').locator('summary').click();
  await expect(page.getByTestId('script-help')).toContainText('$TMP_OUTPUT_DIR');
  await page.getByRole('button', { name: 'Add a secret' }).click();
  await page.getByLabel('New secret 1 name').fill('TOKEN');
  await page.getByLabel('New secret 1 value').fill('new-access-secret');

  // A value without a name, or a name given twice, is named under its field.
  await page.getByRole('button', { name: 'Add a label' }).click();
  await page.getByLabel('Label 1 value').fill('vision');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('[data-field="labels"]')).toContainText('row 1: a value needs a name');
  await expect(page.getByLabel('Label 1 name')).toHaveAttribute('aria-invalid', 'true');
  await page.getByLabel('Label 1 name').fill('team');
  await page.getByRole('button', { name: 'Add a variable' }).click();
  await page.getByLabel('Variable 3 name').fill('MODE');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('[data-field="environment"]')).toContainText('row 3: MODE is given twice');
  await page.getByRole('button', { name: 'Remove Variable 3' }).click();
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/services\/access-e2e$/);

  const stored = await (await api.getService(request, 'access-e2e')).json();
  expect(stored.visibility).toBe('restricted');
  expect(stored.allowed_users).toEqual(['alice@example.org', 'bob@example.org']);
  expect(stored.labels.team).toBe('vision');
  expect(stored.annotations.note).toBe('demo');
  expect(stored.environment.variables).toEqual({ MODE: 'fast', CERT: '-----BEGIN-----\nabc=\n-----END-----' });
  expect(stored.output).toEqual([{ storage_provider: 'minio.default', path: 'access-e2e/out', suffix: ['.png', '.jpg'] }]);
  expect(Object.keys(stored.environment.secrets).sort()).toEqual(['API_KEY', 'TOKEN']);
  const text = JSON.stringify(stored);
  expect(text).not.toContain('kept-access-secret');
  expect(text).not.toContain('new-access-secret');

  // The form shows them again, without the values of secrets.
  await page.goto('/services/access-e2e/edit');
  await expect(page.getByLabel('Label 1 name')).toHaveValue('team');
  await expect(page.getByLabel('Label 1 value')).toHaveValue('vision');
  await expect(page.getByLabel('Variable 1 value')).toHaveValue('-----BEGIN-----\nabc=\n-----END-----');
  await expect(page.getByLabel('Visibility')).toHaveValue('restricted');
  await expect(page.getByLabel('Output folders (bucket/folder, one per line)')).toHaveValue('access-e2e/out suffix=.png,.jpg');
  await expect(page.getByLabel('TOKEN', { exact: true })).toHaveValue('');
});

test('leaving the form with changes not saved asks first', async ({ page, request }) => {
  await api.createService(request, {
    name: 'guard-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: '#!/bin/sh\necho hi\n',
  });
  await signIn(page, '/services/guard-e2e/edit');
  // Hydrated: the form's button is enabled then.
  const save = page.getByRole('button', { name: 'Save' });
  await expect(save).toBeEnabled();
  const asked: string[] = [];
  // Untouched: a link leaves at once.
  page.on('dialog', (dialog) => {
    asked.push(dialog.message());
    return asked.length === 1 ? dialog.dismiss() : dialog.accept();
  });
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await expect(page).toHaveURL(/\/jobs$/);
  expect(asked).toEqual([]);

  await page.goto('/services/guard-e2e/edit');
  await expect(save).toBeEnabled();
  await page.getByLabel('Memory').fill('1Gi');
  // Declined: the page and the change stay.
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await expect.poll(() => asked.length).toBe(1);
  expect(asked[0]).toContain('not saved');
  await expect(page).toHaveURL(/\/services\/guard-e2e\/edit$/);
  await expect(page.getByLabel('Memory')).toHaveValue('1Gi');
  // Accepted: it leaves.
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await expect(page).toHaveURL(/\/jobs$/);
  expect(asked.length).toBe(2);

  // Saving leaves without asking.
  await page.goto('/services/guard-e2e/edit');
  await expect(save).toBeEnabled();
  await page.getByLabel('Memory').fill('512Mi');
  await save.click();
  await expect(page).toHaveURL(/\/services\/guard-e2e$/);
  expect(asked.length).toBe(2);
});

// Issue 23: changes made in the YAML tab, or carried from it to the form, are guarded too.
test('leaving with changes in the YAML tab asks first, on Edit and New service', async ({ page, request }) => {
  await api.createService(request, {
    name: 'yaml-guard-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: '#!/bin/sh\necho hi\n',
  });
  const asked: string[] = [];
  page.on('dialog', (dialog) => {
    // Leaving by the address bar (the test's own goto) is let through.
    if (dialog.type() === 'beforeunload') return dialog.accept();
    asked.push(dialog.message());
    return dialog.dismiss();
  });
  await signIn(page, '/services/yaml-guard-e2e/edit');
  await expect(page.getByRole('button', { name: 'Save' })).toBeEnabled();
  // The YAML tab untouched: nothing to lose.
  await page.getByRole('tab', { name: 'YAML' }).click();
  const yaml = page.getByLabel('FDL (YAML)');
  await expect(yaml).toHaveValue(/yaml-guard-e2e/);
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await expect(page).toHaveURL(/\/jobs$/);
  expect(asked).toEqual([]);

  // Typed in the YAML tab: asked, and declining keeps the text.
  await page.goto('/services/yaml-guard-e2e/edit');
  await expect(page.getByRole('button', { name: 'Save' })).toBeEnabled();
  await page.getByRole('tab', { name: 'YAML' }).click();
  const text = await yaml.inputValue();
  await yaml.fill(text.replace('echo hi', 'echo changed'));
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await expect.poll(() => asked.length).toBe(1);
  await expect(page).toHaveURL(/\/yaml-guard-e2e\/edit$/);
  await expect(yaml).toHaveValue(/echo changed/);
  // Carried to the form, the change is still one not saved.
  await page.getByRole('tab', { name: 'Form' }).click();
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await expect.poll(() => asked.length).toBe(2);
  await expect(page).toHaveURL(/\/yaml-guard-e2e\/edit$/);

  // New service: FDL pasted and not applied asks too.
  await page.goto('/new-service');
  await hydrated(page);
  await page.getByRole('tab', { name: 'YAML' }).click();
  await page.getByLabel('FDL (YAML)').fill('functions:\n  oscar:\n  - c:\n      name: pasted-e2e\n');
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await expect.poll(() => asked.length).toBe(3);
  await expect(page).toHaveURL(/\/new-service$/);
});

test('a service is edited as YAML, and the form follows', async ({ page, request }) => {
  await api.createService(request, {
    name: 'yaml-edit-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: '#!/bin/sh\necho hi\n',
    memory: '256Mi',
    environment: { secrets: { API_KEY: 'kept-yaml-secret' } },
  });
  const before = await (await api.getService(request, 'yaml-edit-e2e')).json();
  await signIn(page, '/services/yaml-edit-e2e/edit');
  await expect(page.getByRole('button', { name: 'Save' })).toBeEnabled();
  await page.getByLabel('Memory').fill('1Gi');
  await page.getByRole('tab', { name: 'YAML' }).click();
  const yaml = page.getByLabel('FDL (YAML)');
  await expect(yaml).toHaveValue(/memory: 1Gi/);
  await expect(yaml).not.toHaveValue(/kept-yaml-secret/);

  // Another name is refused: this page edits this service.
  const text = await yaml.inputValue();
  await yaml.fill(text.replace('name: yaml-edit-e2e', 'name: someone-else'));
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('sync-note')).toContainText('this page edits "yaml-edit-e2e"');

  // Back in the form, what the YAML says shows; saved from the YAML tab, it is stored.
  await yaml.fill(text.replace('memory: 1Gi', 'memory: 768Mi'));
  await page.getByRole('tab', { name: 'Form' }).click();
  await expect(page.getByLabel('Memory')).toHaveValue('768Mi');
  await page.getByRole('tab', { name: 'YAML' }).click();
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/services\/yaml-edit-e2e$/);
  const stored = await (await api.getService(request, 'yaml-edit-e2e')).json();
  expect(stored.memory).toBe('768Mi');
  expect(stored.token).toBe(before.token);
  expect(Object.keys(stored.environment.secrets)).toEqual(['API_KEY']);
});

test('storage providers are edited in the form, credentials never shown', async ({ page, request }) => {
  await api.createService(request, {
    name: 'providers-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: '#!/bin/sh\necho hi\n',
    input: [{ path: 'providers-e2e/in' }],
    output: [{ storage_provider: 'webdav.dcache', path: 'results' }],
    storage_providers: { webdav: { dcache: { hostname: 'dcache.example.org:2880', login: 'me', password: 'dav-e2e-password' } } },
  });
  await signIn(page, '/services/providers-e2e/edit');
  await expect(page.getByRole('button', { name: 'Save' })).toBeEnabled();
  const fields = page.getByTestId('provider-fields');
  const row = fields.getByTestId('provider-row');
  await expect(row.getByLabel('hostname')).toHaveValue('dcache.example.org:2880');
  await expect(row.getByLabel('password')).toHaveValue('');
  await expect(row.getByLabel('password')).toHaveAttribute('placeholder', 'stored: blank keeps it');
  await expect(page.getByLabel('Output folders (bucket/folder, one per line)')).toHaveValue('webdav.dcache:results');
  await expect(page.locator('body')).not.toContainText('dav-e2e-password');

  // A provider without a name is named as the problem before anything is sent.
  await fields.getByRole('button', { name: 'Add a storage provider' }).click();
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('[data-field="storage_providers"]')).toContainText('provider 2 needs a name');
  await fields.getByRole('button', { name: 'Remove provider 2' }).click();

  await row.getByLabel('login').fill('someone-else');
  await page.getByLabel('Output folders (bucket/folder, one per line)').fill('webdav.dcache:results/new');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/services\/providers-e2e$/);
  const stored = await (await api.getService(request, 'providers-e2e')).json();
  expect(stored.storage_providers.webdav.dcache.login).toBe('someone-else');
  expect(stored.output[0]).toMatchObject({ storage_provider: 'webdav.dcache', path: 'results/new' });
  expect(JSON.stringify(stored)).not.toContain('dav-e2e-password');
});

test('a federated service says where its waiting jobs go, never its cluster credentials', async ({ page, request }) => {
  await api.createService(request, {
    name: 'federated-e2e',
    image: 'docker.io/library/alpine:3.20',
    script: '#!/bin/sh\necho hi\n',
    input: [{ path: 'federated-e2e/in' }],
    federation: {
      topology: 'star', delegation: 'load-based', rescheduler_threshold: 45,
      members: [{ type: 'oscar', cluster_id: 'cloud', service_name: 'federated-e2e', priority: 2 }],
    },
    clusters: { cloud: { endpoint: 'http://127.0.0.1:9', auth_user: 'oscar', auth_password: 'cloud-e2e-password' } },
  });
  await signIn(page, '/services/federated-e2e');
  await expect(page.getByTestId('federation')).toContainText('more than 45 s');
  await expect(page.getByTestId('federation')).toContainText('most room first');
  await expect(page.getByTestId('federation-members')).toContainText('cloud/federated-e2e');
  // Federation is active here: no "not active" notice names it.
  await expect(page.getByText('Set but not active')).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText('cloud-e2e-password');
});
