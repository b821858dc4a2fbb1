// Playwright drives Debian's Chromium (never a downloaded browser) against the built site.
// WebGPU runs on SwiftShader (on the CPU), so everything is slow-ish: timeouts are generous
// and tests run one at a time (CI machines have 2 cores).
import { defineConfig } from '@playwright/test';
import { CHROMIUM, WEBGPU_ARGS } from './tests/browser.mjs';

const PORT = Number(process.env.PORT ?? 4173);

export default defineConfig({
  testDir: './tests',
  // Fails the run if any page reported a Content-Security-Policy violation to server.mjs.
  globalTeardown: './csp-teardown.mjs',
  timeout: 240_000,
  expect: { timeout: 90_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${PORT}/`,
    browserName: 'chromium',
    headless: true,
    launchOptions: { executablePath: CHROMIUM, args: WEBGPU_ARGS },
    viewport: { width: 1200, height: 900 },
    trace: 'off',
  },
  webServer: {
    command: 'node server.mjs',
    url: `http://127.0.0.1:${PORT}/index.html`,
    env: { PORT: String(PORT) },
    reuseExistingServer: !process.env.CI,
    timeout: 30_000,
  },
});
