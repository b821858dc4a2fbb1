// Global teardown: every page of the suite ran under server.mjs's strict Content-Security-Policy
// with a `report-uri` back to it. Any violation reported over the whole run fails it.
const PORT = Number(process.env.PORT ?? 4173);

export default async function cspTeardown() {
  let reports;
  try {
    reports = await (await fetch(`http://127.0.0.1:${PORT}/csp-reports`)).json();
  } catch (e) {
    throw new Error(`could not read the CSP violation reports from server.mjs: ${e.message}`);
  }
  if (reports.length > 0) {
    const lines = reports.map((r) => `  ${r['violated-directive'] ?? r['effective-directive']}: ${r['blocked-uri']} (${r['source-file'] ?? r['document-uri']}:${r['line-number'] ?? '?'})`);
    throw new Error(`${reports.length} Content-Security-Policy violation(s) over the e2e run:\n${lines.join('\n')}`);
  }
  console.log('CSP: no violation reported over the e2e run');
}
