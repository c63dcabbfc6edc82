import { test as base, expect, APIRequestContext, Page } from '@playwright/test';

export const ADMIN = process.env.OSCAR_USERNAME ?? 'oscar';
export const PASSWORD = process.env.OSCAR_PASSWORD ?? '';

/** Console errors a test provokes on purpose, each matched by one pattern. */
export type ExpectedErrors = { allow(pattern: RegExp): void };

// Every test fails on any page error or unexpected console error, hydration panics included.
export const test = base.extend<{ expectedErrors: ExpectedErrors }>({
  expectedErrors: [
    async ({ page }, use) => {
      const problems: string[] = [];
      const allowed: RegExp[] = [];
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console.error: ${msg.text()}`);
      });
      await use({ allow: (pattern) => allowed.push(pattern) });
      const unexpected = problems.filter((p) => !allowed.some((re) => re.test(p)));
      expect(unexpected, 'the page logged errors').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

/** Waits until the wasm bundle has loaded and hydrated the page. */
export async function hydrated(page: Page) {
  await page.waitForLoadState('networkidle');
}

export async function signIn(page: Page, next = '/services') {
  await page.goto(next);
  await expect(page).toHaveURL(/\/login\?next=/);
  await hydrated(page);
  await page.getByLabel('Username').fill(ADMIN);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(new RegExp(`${next.replace('?', '\\?')}$`));
  await expect(page.getByTestId('current-user')).toContainText(ADMIN);
  // The page is rendered by the server first: its handlers exist once it is hydrated.
  await hydrated(page);
}

/** The OSCAR REST API as oscar-python uses it: HTTP Basic with the admin account. */
const basic = { Authorization: 'Basic ' + Buffer.from(`${ADMIN}:${PASSWORD}`).toString('base64') };

export const api = {
  async createService(request: APIRequestContext, service: object) {
    const created = await request.post('/system/services', { data: service, headers: basic });
    expect(created.status(), await created.text()).toBe(201);
  },
  async createBucket(request: APIRequestContext, name: string) {
    const created = await request.post('/system/buckets', { data: { bucket_name: name }, headers: basic });
    expect(created.status(), await created.text()).toBe(201);
  },
  /** Queues a job of the service with `body` as its payload, as a client with its token does. */
  async queueJob(request: APIRequestContext, service: string, body = '"x"') {
    const token = (await (await api.getService(request, service)).json()).token;
    const queued = await request.post(`/job/${service}`, { headers: { Authorization: `Bearer ${token}` }, data: body });
    expect(queued.status(), await queued.text()).toBe(201);
  },
  /** Sets a user's quota (`PUT /system/quotas/user/{id}`) as the admin. */
  async setQuota(request: APIRequestContext, user: string, quota: object) {
    const set = await request.put(`/system/quotas/user/${user}`, { data: quota, headers: basic });
    expect(set.status(), await set.text()).toBe(200);
  },
  /** The response of `GET /system/services/{name}`. */
  getService(request: APIRequestContext, name: string) {
    return request.get(`/system/services/${name}`, { headers: basic });
  },
};
