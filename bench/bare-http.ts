/**
 * The baseline for the HTTP benchmark: a bare uWebSockets.js handler that parses the same OIP
 * JSON request and computes the same demo-logistic answer (dot product + sigmoid), with no
 * validation, metrics, batching or engine. Prints its port on stdout.
 *
 * A request with the binary tensor extension (Inference-Header-Content-Length) is answered as
 * transport only: the body is read (each chunk copied once, as Sluice does) and a binary answer
 * of one float per row is sent without computing anything. It measures how many such batches
 * this machine moves through uWebSockets.js at all, the ceiling for Sluice's binary figure.
 */
import uWS from 'uWebSockets.js';

const W = Array.from({ length: 100 }, (_, i) => ((i % 7) - 3) / 10);

const app = uWS.App().post('/v2/models/:model/infer', (res, req) => {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  const headerLength = Number(req.getHeader('inference-header-content-length') || -1);
  if (headerLength >= 0) return transportOnly(res, headerLength, Number(req.getHeader('content-length')), () => aborted);
  const chunks: Buffer[] = [];
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast) return;
    const doc = JSON.parse(Buffer.concat(chunks).toString()) as { inputs: Array<{ data: number[] }> };
    const x = doc.inputs[0]!.data;
    let z = 0.25;
    for (let i = 0; i < 100; i++) z += x[i]! * W[i]!;
    const p = 1 / (1 + Math.exp(-z));
    if (aborted) return;
    res.cork(() => {
      res.writeHeader('Content-Type', 'application/json').end(
        `{"model_name":"demo-logistic","model_version":"1","outputs":[{"name":"probability","datatype":"FP32","shape":[1,1],"data":[${Math.fround(p)}]}]}`);
    });
  });
}).get('/v2/models/:model', (res) => {
  res.writeHeader('Content-Type', 'application/json').end(JSON.stringify({
    name: 'demo-logistic', versions: ['1'], platform: 'bare',
    inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 100] }],
    outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
  }));
});

function transportOnly(res: uWS.HttpResponse, headerLength: number, contentLength: number, aborted: () => boolean): void {
  const body = Buffer.allocUnsafe(contentLength);
  let at = 0;
  res.onData((chunk, isLast) => {
    body.set(new Uint8Array(chunk), at);
    at += chunk.byteLength;
    if (!isLast) return;
    const head = JSON.parse(body.subarray(0, headerLength).toString()) as { inputs: Array<{ shape: number[] }> };
    const rows = head.inputs[0]!.shape[0]!;
    const json = `{"model_name":"demo-logistic","model_version":"1","outputs":[{"name":"probability","datatype":"FP32","shape":[${rows},1],"parameters":{"binary_data_size":${rows * 4}}}]}`;
    const out = Buffer.concat([Buffer.from(json), Buffer.alloc(rows * 4)]);
    if (aborted()) return;
    res.cork(() => {
      res.writeHeader('Content-Type', 'application/octet-stream').writeHeader('Inference-Header-Content-Length', String(Buffer.byteLength(json))).end(out);
    });
  });
}

app.listen('127.0.0.1', Number(process.env.PORT ?? 0), (socket) => {
  if (!socket) process.exit(1);
  console.log(uWS.us_socket_local_port(socket as unknown as uWS.us_socket));
});
