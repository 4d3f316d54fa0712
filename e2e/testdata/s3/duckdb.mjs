// Lists a table's data files through Weir's S3 endpoint with the config
// the REST catalog vended, downloads them with GetObject, and counts their
// rows with DuckDB (@duckdb/node-api). DuckDB's httpfs extension cannot be
// installed offline, so DuckDB reads the bytes the endpoint returned.
// Usage: node duckdb.mjs <catalog URL> <repo> <branch> <namespace> <table> <tmp dir>
import { S3Client, ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3'
import { DuckDBInstance } from '@duckdb/node-api'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const [base, repo, branch, ns, name, tmp] = process.argv.slice(2)
const rsp = await fetch(`${base}/v1/${repo}/${branch}/namespaces/${ns}/tables/${name}`)
const res = await rsp.json()
const cfg = res.config || {}
const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(res.metadata.location)
const s3 = new S3Client({
  endpoint: cfg['s3.endpoint'], region: cfg['s3.region'], forcePathStyle: true,
  credentials: { accessKeyId: cfg['s3.access-key-id'], secretAccessKey: cfg['s3.secret-access-key'], sessionToken: cfg['s3.session-token'] },
})
const list = await s3.send(new ListObjectsV2Command({ Bucket: m[1], Prefix: m[2] + '/data/' }))
const files = []
for (const o of list.Contents || []) {
  if (!o.Key.endsWith('.parquet')) continue
  const got = await s3.send(new GetObjectCommand({ Bucket: m[1], Key: o.Key }))
  const p = join(tmp, `f${files.length}.parquet`)
  await writeFile(p, await got.Body.transformToByteArray())
  files.push(p)
}
const db = await DuckDBInstance.create(':memory:')
const c = await db.connect()
const r = await c.runAndReadAll(`SELECT count(*)::INTEGER AS n, sum(id)::INTEGER AS s FROM read_parquet([${files.map(f => `'${f}'`).join(',')}])`)
console.log(JSON.stringify({ files: files.length, rows: r.getRows()[0][0], sum: r.getRows()[0][1] }))
