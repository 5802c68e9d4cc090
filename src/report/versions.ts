import { release } from "node:os";
import sharp from "sharp";
import { VERSION } from "../app/version.js";
import type { Database } from "../db/database.js";
import { databaseVersion } from "./sources.js";

/** What a node runs on: the support report's "Versions" and `GET /admin/v1/config`. */
export interface Versions {
  imgfleet: string;
  node: string;
  os: string;
  sharp: string;
  libvips: string;
  /** Null embedded (no NATS). */
  natsServer: string | null;
  database: { kind: string; version: string };
}

export async function collectVersions(src: {
  db: Database;
  node: { fleet: boolean; brokerVersion: string | null };
}): Promise<Versions> {
  const { vips, sharp: sharpVersion } = sharp.versions as { vips: string; sharp?: string };
  return {
    imgfleet: VERSION,
    node: process.version,
    os: `${process.platform} ${release()} ${process.arch}`,
    sharp: sharpVersion ?? "unknown",
    libvips: vips,
    natsServer: src.node.fleet ? (src.node.brokerVersion ?? "unknown") : null,
    database: {
      kind: src.db.kind,
      version: await databaseVersion(src.db).catch((e: Error) => `unreachable: ${e.message}`),
    },
  };
}
