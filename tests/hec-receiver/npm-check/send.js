// Sends events with Splunk's own npm HEC client (splunk-logging) and prints what it saw.
// usage: node send.js <node_modules dir> <url> <token> <count> [index]
// Output: one JSON line {"status":..,"body":..,"requestError":..,"errors":[..]}.
"use strict";
const [, , modules, url, token, countText, index] = process.argv;
const SplunkLogger = require(modules + "/splunk-logging").Logger;
const count = parseInt(countText, 10);
// One batch of `count` events, sent when the last one is queued; no client retries.
const logger = new SplunkLogger({ token, url, maxBatchCount: count, maxRetries: 0 });
const errors = [];
logger.error = (err) => errors.push({ message: err.message, code: err.code || null });
const metadata = { source: "splunk-logging", sourcetype: "npm:test", host: "node-host" };
if (index) metadata.index = index;
for (let i = 0; i < count; i++) {
  logger.send(
    { message: { n: i, text: "héllo \"hec\"\n" + i }, severity: "info", metadata },
    (err, resp, body) => {
      console.log(JSON.stringify({
        status: resp ? resp.statusCode : null,
        body: body || null,
        requestError: err ? String(err) : null,
        errors,
      }));
    }
  );
}
