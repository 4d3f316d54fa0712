// Loads a table with iceberg-js through Weir's REST catalog, then reads
// its metadata file through Weir's S3 endpoint with @aws-sdk/client-s3 and
// only the config the catalog vended. Prints one JSON line.
// Usage: node icebergjs.mjs <catalog base URL> <warehouse> <namespace> <table>
import { IcebergRestCatalog } from 'iceberg-js'
import { S3Client, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'

const [baseUrl, warehouse, ns, name] = process.argv.slice(2)
const catalog = new IcebergRestCatalog({ baseUrl, warehouse })
const res = await catalog.loadTableResult({ namespace: [ns], name })
const cfg = res.config || {}
const loc = res['metadata-location']
const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(loc)
if (!m) throw new Error('metadata-location is not s3://: ' + loc)
const s3 = new S3Client({
  endpoint: cfg['s3.endpoint'],
  region: cfg['s3.region'],
  forcePathStyle: cfg['s3.path-style-access'] === 'true',
  credentials: {
    accessKeyId: cfg['s3.access-key-id'],
    secretAccessKey: cfg['s3.secret-access-key'],
    sessionToken: cfg['s3.session-token'],
  },
})
const got = await s3.send(new GetObjectCommand({ Bucket: m[1], Key: m[2] }))
const meta = JSON.parse(await got.Body.transformToString())
let otherRepo = 'ok'
try {
  await s3.send(new GetObjectCommand({ Bucket: m[1], Key: 'beta/' + m[2].split('/').slice(1).join('/') }))
} catch (e) {
  otherRepo = e.name
}
let overwrite = 'ok'
try {
  await s3.send(new PutObjectCommand({ Bucket: m[1], Key: m[2], Body: 'x' }))
} catch (e) {
  overwrite = e.name
}
console.log(JSON.stringify({
  location: loc,
  restUUID: res.metadata['table-uuid'],
  s3UUID: meta['table-uuid'],
  s3Snapshot: meta['current-snapshot-id'],
  restSnapshot: res.metadata['current-snapshot-id'],
  otherRepo,
  overwrite,
}))
