// Imported first by the CLI, before anything else runs: on a Node.js older than package.json's
// `engines` (Debian 12's is 20) the commands would fail later with an error that names neither the
// cause nor the cure. It imports nothing, so it runs before any module that needs a newer Node.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 22)) {
  process.stderr.write(
    `gcore-image-sync needs Node.js 22.22 or newer (24 recommended); this is ${process.version} (${process.execPath}). ` +
      'Put a newer Node.js first on PATH and run the command again.\n',
  );
  process.exit(2);
}
