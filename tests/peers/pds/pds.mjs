// A throwaway Bluesky PDS with an in-memory PLC directory, on 127.0.0.1, for plurspool's tests.
// Usage: node pds.mjs [--port N] [--plc-port N] [--admin-password P] [--rate-limits]
// Prints one line `ready <url> plc=<url>` when both serve; SIGTERM/SIGINT stop it.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { PDS, envToCfg, envToSecrets } from '@atproto/pds'
import { PlcServer, Database } from '@did-plc/server'

const { values: opt } = parseArgs({ options: {
  port: { type: 'string', default: '0' }, 'plc-port': { type: 'string', default: '0' },
  'admin-password': { type: 'string', default: 'admin-pass' }, 'rate-limits': { type: 'boolean', default: false },
} })
const freePort = () => new Promise((ok, fail) => {
  const s = net.createServer().once('error', fail)
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)) })
})
const onLoopback = (app) => { const listen = app.listen.bind(app); app.listen = (port) => listen(port, '127.0.0.1') }

const dir = mkdtempSync(join(tmpdir(), 'plurspool-pds-'))
const plc = PlcServer.create({ db: Database.mock(), port: Number(opt['plc-port']) })
onLoopback(plc.app)
await plc.start()
const plcUrl = `http://127.0.0.1:${plc.server.address().port}`
const port = Number(opt.port) || await freePort()
const env = {
  devMode: true, port, hostname: 'localhost', serviceHandleDomains: ['.test'], dataDirectory: dir,
  blobstoreDiskLocation: join(dir, 'blobs'), didPlcUrl: plcUrl, inviteRequired: false, crawlers: [],
  jwtSecret: randomBytes(16).toString('hex'), adminPassword: opt['admin-password'],
  plcRotationKeyK256PrivateKeyHex: randomBytes(32).toString('hex'),
  rateLimitsEnabled: opt['rate-limits'], disableSsrfProtection: true,
}
const pds = await PDS.create(envToCfg(env), envToSecrets(env))
onLoopback(pds.app)
await pds.start()
console.log(`ready http://127.0.0.1:${port} plc=${plcUrl}`)

const stop = async () => {
  setTimeout(() => { rmSync(dir, { recursive: true, force: true }); process.exit(0) }, 3000).unref()
  try { await pds.destroy(); await plc.destroy() } finally { rmSync(dir, { recursive: true, force: true }); process.exit(0) }
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
