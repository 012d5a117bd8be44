/**
 * The partner log file format: a 32-byte header and fixed-size flight-data records, all
 * little-endian.
 *
 * Header (32 bytes)
 *   0  4  magic          ASCII "PLOG"
 *   4  2  version        u16, always 1
 *   6  2  recordSize     u16, always 24
 *   8  4  recordCount    u32
 *  12  8  startedAt      f64, epoch milliseconds
 *  20 12  aircraftId     ASCII, zero-padded
 *
 * Record (24 bytes)
 *   0  4  offsetMs       u32, since startedAt
 *   4  4  altitudeFt     f32
 *   8  4  groundSpeedKt  f32
 *  12  4  headingDeg     f32
 *  16  4  fuelKg         f32
 *  20  4  engineTempC    f32
 */
export const HEADER_SIZE = 32;
export const RECORD_SIZE = 24;
const MAGIC = 'PLOG';

export interface FlightRecord {
  offsetMs: number;
  altitudeFt: number;
  groundSpeedKt: number;
  headingDeg: number;
  fuelKg: number;
  engineTempC: number;
}

export interface FlightLog {
  aircraftId: string;
  startedAt: number;
  records: FlightRecord[];
}

/** A file that does not follow the format; retrying will not help. */
export class LogFormatError extends Error {
  override name = 'LogFormatError';
}

export function encodeLog(log: FlightLog): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE + RECORD_SIZE * log.records.length);
  buf.write(MAGIC, 0, 'ascii');
  buf.writeUInt16LE(1, 4);
  buf.writeUInt16LE(RECORD_SIZE, 6);
  buf.writeUInt32LE(log.records.length, 8);
  buf.writeDoubleLE(log.startedAt, 12);
  buf.write(log.aircraftId.slice(0, 12), 20, 'ascii');
  log.records.forEach((r, i) => {
    const at = HEADER_SIZE + i * RECORD_SIZE;
    buf.writeUInt32LE(r.offsetMs, at);
    buf.writeFloatLE(r.altitudeFt, at + 4);
    buf.writeFloatLE(r.groundSpeedKt, at + 8);
    buf.writeFloatLE(r.headingDeg, at + 12);
    buf.writeFloatLE(r.fuelKg, at + 16);
    buf.writeFloatLE(r.engineTempC, at + 20);
  });
  return buf;
}

export function decodeLog(buf: Buffer): FlightLog {
  if (buf.length < HEADER_SIZE || buf.toString('ascii', 0, 4) !== MAGIC) throw new LogFormatError('not a PLOG file (bad magic)');
  if (buf.readUInt16LE(4) !== 1 || buf.readUInt16LE(6) !== RECORD_SIZE) throw new LogFormatError('unsupported version or record size');
  const count = buf.readUInt32LE(8);
  if (buf.length !== HEADER_SIZE + count * RECORD_SIZE) throw new LogFormatError(`expected ${count} records, file has ${buf.length} bytes`);
  const records: FlightRecord[] = [];
  for (let i = 0; i < count; i++) {
    const at = HEADER_SIZE + i * RECORD_SIZE;
    records.push({
      offsetMs: buf.readUInt32LE(at),
      altitudeFt: buf.readFloatLE(at + 4),
      groundSpeedKt: buf.readFloatLE(at + 8),
      headingDeg: buf.readFloatLE(at + 12),
      fuelKg: buf.readFloatLE(at + 16),
      engineTempC: buf.readFloatLE(at + 20),
    });
  }
  return { aircraftId: buf.toString('ascii', 20, 32).replace(/\0+$/, ''), startedAt: buf.readDoubleLE(12), records };
}

/** A deterministic flight of `count` records. */
export function synthesize(aircraftId: string, startedAt: number, count: number, seed: number): FlightLog {
  let x = seed || 1;
  const rand = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
  const records = Array.from({ length: count }, (_, i) => ({
    offsetMs: i * 1_000,
    altitudeFt: Math.min(37_000, i * 120) + rand() * 50,
    groundSpeedKt: 140 + Math.min(330, i * 3) + rand() * 5,
    headingDeg: (90 + rand() * 4) % 360,
    fuelKg: 18_000 - i * 2.5,
    engineTempC: 600 + rand() * 40,
  }));
  return { aircraftId, startedAt, records };
}
