// How a browser check ends, the same for each, as the tests read it: the JSON report written to
// `out` (or printed), and the exit code: 0 all passed, 1 something failed (the report says what),
// 2 the check itself could not run (a usage error, a crash).
const fs = require("fs");

function finish(report, out, failed) {
  const text = JSON.stringify(report);
  if (out) fs.writeFileSync(out, text);
  else console.log(text);
  process.exit(failed ? 1 : 0);
}

function crashed(err) {
  console.error(err);
  process.exit(2);
}

module.exports = { finish, crashed };
