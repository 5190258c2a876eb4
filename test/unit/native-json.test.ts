import { describe, expect, it } from 'vitest';
import { decodeInfer } from '../../src/frontend/codec/oip-infer.js';
import { nativeJsonPaths, setNativeJson } from '../../src/frontend/codec/safe-json.js';
import { mulberry32 } from '../helpers/random.js';

/** decodeInfer's result, or its error's code and message, with native data parsing on or off. */
function decode(body: string, native: boolean): unknown {
  setNativeJson(native);
  try {
    const r = decodeInfer(Buffer.from(body), undefined, 16, 0, 'm', undefined);
    return { inputs: r.request.inputs.map((t) => ({ ...t, data: Array.from(t.data as ArrayLike<number>, (v) => (typeof v === 'bigint' ? `${v}n` : Object.is(v, -0) ? '-0' : v)) })), id: r.request.id, outputs: r.request.outputs };
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  } finally {
    setNativeJson(true);
  }
}

const NUMBERS = ['0', '-0', '1', '-1', '7', '0.5', '-2.25', '1e3', '1E+3', '2.5e-3', '-7E-2', '1e400', '-1e400', '1e-400',
  '3.4028235e38', '-3.4028236e38', '3.4028234663852886e38', '0.30000000000000004', '123456789012345678901234567890',
  '9007199254740993', '2147483648', '-2147483649', '255', '256', '65504', '65520', '0.1', '-0.7216353416442871', '4.9e-324'];
const BAD_NUMBERS = ['01', '.5', '1.', '-', '+1', '1e', '1e+', 'NaN', 'Infinity', '0x10', '1.2.3', '--1'];
const DATATYPES = ['FP32', 'FP64', 'FP16', 'INT32', 'INT64', 'UINT8', 'INT8', 'BOOL', 'BYTES'];

const SAFE_NUMBERS = ['0', '-0', '1', '-1', '0.5', '-2.25', '1e3', '1E+3', '2.5e-3', '-7E-2', '1e-400', '0.30000000000000004', '0.1', '-0.7216353416442871', '4.9e-324', '3.4028234663852886e38'];

/** A random request: most are valid FP32/FP64 ones (clean), the rest anything, broken included. */
function generate(rnd: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  if (rnd() < 0.35) return clean(rnd, pick);
  if (rnd() < 0.3) return nearlyPlain(clean(rnd, pick), pick);
  const ws = () => pick(['', '', '', ' ', '\n', ' \t ']);
  const num = () => (rnd() < 0.02 ? pick(BAD_NUMBERS) : rnd() < 0.5 ? pick(NUMBERS) : String(Math.fround((rnd() - 0.5) * 10 ** Math.floor(rnd() * 8))));
  const element = () => (rnd() < 0.97 ? num() : pick(['"x"', 'true', 'null', '{}', '"[1,2]"', '"\\u0000"']));
  const array = (len: number): string => `[${ws()}${Array.from({ length: len }, element).join(`${ws()},${ws()}`)}${ws()}]`;
  const inputs = Array.from({ length: 1 + Math.floor(rnd() * 3) }, (_, k) => {
    const rows = 1 + Math.floor(rnd() * 3);
    const cols = pick([1, 4, 8, 9, 16, 33]);
    const nested = rnd() < 0.4;
    // Data of the declared size most of the time, otherwise a row too long or short.
    const len = (c: number) => (rnd() < 0.9 ? c : c + pick([-1, 1, 5]));
    let data = nested ? `[${Array.from({ length: rnd() < 0.95 ? rows : rows + 1 }, () => array(len(cols))).join(',')}]` : array(len(rows * cols));
    if (rnd() < 0.03) data = `[${data}]`;
    const fields = [
      `"name":"in${k}${pick(['', '[', '\\"]', '\\u0041'])}"`,
      `"datatype":"${pick(DATATYPES)}"`,
      `"shape":[${rows},${cols}]`,
      `${pick(['"data"', '"data"', '"data"', '"d\\u0061ta"'])}:${ws()}${data}`,
    ];
    if (rnd() < 0.05) fields.push(`"data":${array(rows * cols)}`);
    fields.sort(() => rnd() - 0.5);
    return `{${fields.join(`,${ws()}`)}}`;
  });
  let body = `{${ws()}"id":"r",${ws()}"inputs":${ws()}[${inputs.join(',')}]${rnd() < 0.2 ? `,"parameters":{"data":${array(20)}}` : ''}}`;
  // Now and then, a broken body: a character dropped, a comma added, or cut short.
  const r = rnd();
  if (r < 0.05) {
    const at = Math.floor(rnd() * body.length);
    body = body.slice(0, at) + body.slice(at + 1);
  } else if (r < 0.08) {
    const at = body.indexOf(']');
    body = body.slice(0, at) + ',' + body.slice(at);
  } else if (r < 0.1) {
    body = body.slice(0, Math.floor(rnd() * body.length));
  }
  return body;
}

function clean(rnd: () => number, pick: <T>(xs: readonly T[]) => T): string {
  const num = () => (rnd() < 0.3 ? pick(SAFE_NUMBERS) : String(Math.fround((rnd() - 0.5) * 10 ** Math.floor(rnd() * 8))));
  const array = (len: number) => `[${Array.from({ length: len }, num).join(',')}]`;
  const inputs = Array.from({ length: 1 + Math.floor(rnd() * 2) }, (_, k) => {
    const rows = 1 + Math.floor(rnd() * 3);
    const cols = pick([1, 8, 9, 100]);
    const data = rnd() < 0.5 ? array(rows * cols) : `[${Array.from({ length: rows }, () => array(cols)).join(', ')}]`;
    return `{"name":"in${k}","datatype":"${pick(['FP32', 'FP32', 'FP64'])}","shape":[${rows},${cols}],"data":${data}}`;
  });
  return `{"inputs":[${inputs.join(',')}]}`;
}

/**
 * A plain-form request (see parseInferJson) with one change at the edge of that form: valid
 * JSON that is no longer plain, or JSON that is broken in a way only a full parser sees.
 */
function nearlyPlain(body: string, pick: <T>(xs: readonly T[]) => T): string {
  const edits: Array<(b: string) => string> = [
    (b) => b.replace('{"inputs"', pick(['{"id":"r-1","inputs"', '{"id":"\\u0041","inputs"', '{"id":5,"inputs"', '{"id":null,"inputs"', '{"id":"a","id":"b","inputs"', '{"id":"\n","inputs"', '{"id":"ü","inputs"'])),
    (b) => b.replace('"name":"in0"', pick(['"name":"in0\t"', '"name":"in\u00410"', '"name":5', '"name":"in0","name":"in1"', '"name" "in0"', '"name":"in0" ', '"name"  :  "in0"'])),
    (b) => b.replace(/"shape":\[(\d+),/, (_m, d: string) => pick([`"shape":[-${d},`, `"shape":[${d}.0,`, `"shape":[0${d},`, `"shape":[${d}e0,`, `"shape":["${d}",`, `"shape":[ ${d} ,`, `"shape":[1,1,1,1,1,1,1,${d},`, `"shape":[4294967296,`])),
    (b) => b.replace('"datatype":', pick(['"datatype" :', '"datatype":"FP32","datatype":', '"parameters":{},"datatype":', '"datatype":'])),
    (b) => b.replace(/}]}$/, pick(['},]}', '}],}', '}]} {}', '}]}]', '}],"outputs":[{"name":"y"}]}', '}],"parameters":{}}', '}]}\n', '}]} '])),
    (b) => b.replace(',"data":', pick([',"data":[1],"data":', '"data":', ',"data":"x","data":', ', "data" : ', ',"data"::'])),
  ];
  return pick(edits)(body);
}

describe('native JSON tensor data', () => {
  it('decodes every request exactly as JSON.parse does: the same tensors, or the same error code and message', () => {
    const rnd = mulberry32(20261124);
    const before = { ...nativeJsonPaths };
    let nativeOk = 0;
    for (let i = 0; i < 5000; i++) {
      const body = generate(rnd);
      const native = decode(body, true);
      expect(native, body).toEqual(decode(body, false));
      if ((native as { inputs?: unknown }).inputs) nativeOk++;
    }
    // The generator must mostly make requests that decode, or the comparison proves little.
    expect(nativeOk).toBeGreaterThan(1000);
    // And every path must have been compared: plain form, rewritten text, JSON.parse alone.
    expect(nativeJsonPaths.plain - before.plain).toBeGreaterThan(400);
    expect(nativeJsonPaths.rewritten - before.rewritten).toBeGreaterThan(1000);
    expect(nativeJsonPaths.whole - before.whole).toBeGreaterThan(500);
  });

  it('a client string that starts with U+0000 is never taken for a parsed array', () => {
    const body = '{"inputs":[{"name":"x","datatype":"FP32","shape":[8],"data":"\\u00000"},{"name":"y","datatype":"FP32","shape":[8],"data":[1,2,3,4,5,6,7,8]}]}';
    expect(decode(body, true)).toEqual(decode(body, false));
    expect(decode(body, true)).toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
