import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { rewriteRefs } from "../../src/contract/openapi.js";

type Json = Record<string, unknown>;

interface OperationDoc {
  operationId: string;
  responses: Record<string, { content?: Record<string, { schema: Json }> }>;
  "x-internal"?: boolean;
}

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OperationDoc>>;
  components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> };
}

/** One answer as the checker saw it. */
export interface Checked {
  operationId: string;
  status: number;
  /** The parsed JSON body, or the text, or null for bytes and empty bodies. */
  body: unknown;
}

// ajv-formats is CommonJS: its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv2020,
) => Ajv2020;

const DOC_ID = "urn:imgfleet:openapi";

/** `#/components/schemas/X` → the same schema under the checker's own id, everywhere in `value`. */
function relink(value: unknown): unknown {
  return rewriteRefs(value, "#/components/schemas/", `${DOC_ID}#/$defs/`);
}

/** Whether a response's media type is one the document lists (`image/*` and `*\/*` ranges included). */
function mediaKey(listed: string[], contentType: string): string | undefined {
  const type = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return (
    listed.find((l) => l === type) ??
    listed.find((l) => l.endsWith("/*") && type.startsWith(l.slice(0, -1))) ??
    listed.find((l) => l === "*/*")
  );
}

/**
 * Checks real answers against an OpenAPI document: the status must be
 * documented for the operation (exactly, or as `4XX`/`5XX`), the media type
 * listed, and a JSON body valid against its schema (ajv, JSON Schema 2020-12).
 * Records which operations were exercised, with which statuses.
 */
export class OpenApiChecker {
  readonly seen = new Map<string, number[]>();
  readonly #ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  readonly #compiled = new Map<Json, ValidateFunction>();

  constructor(readonly doc: OpenApiDocument) {
    addFormats(this.#ajv);
    this.#ajv.addFormat("binary", true);
    this.#ajv.addSchema({ $id: DOC_ID, $defs: relink(doc.components.schemas) as Json });
  }

  operation(method: string, path: string): OperationDoc {
    const op = this.doc.paths[path]?.[method.toLowerCase()];
    if (!op) throw new Error(`${method} ${path} is not in the document`);
    return op;
  }

  /** Checks one answer to `method` on the document's `path` template; throws with the reason if it does not fit. */
  async check(method: string, path: string, res: Response): Promise<Checked> {
    const op = this.operation(method, path);
    const what = `${method} ${path} → ${res.status}`;
    const documented = op.responses[String(res.status)] ?? op.responses[`${Math.floor(res.status / 100)}XX`];
    if (!documented) throw new Error(`${what}: status not documented (${await res.text()})`);
    this.seen.set(op.operationId, [...(this.seen.get(op.operationId) ?? []), res.status]);
    const checked = { operationId: op.operationId, status: res.status };
    const bytes = Buffer.from(await res.arrayBuffer());
    if (!documented.content) {
      if (bytes.length > 0) throw new Error(`${what}: documented without a body, got ${bytes.length} bytes`);
      return { ...checked, body: null };
    }
    const contentType = res.headers.get("content-type") ?? "";
    const key = mediaKey(Object.keys(documented.content), contentType);
    if (!key) throw new Error(`${what}: content type ${contentType} not documented`);
    const schema = documented.content[key]?.schema ?? {};
    if (!/json/.test(key))
      return { ...checked, body: schema.type === "string" ? bytes.toString("utf8") : null };
    const body: unknown = JSON.parse(bytes.toString("utf8"));
    const validate = this.#validator(schema);
    if (!validate(body)) {
      throw new Error(`${what}: body does not match the document: ${this.#ajv.errorsText(validate.errors)}`);
    }
    return { ...checked, body };
  }

  #validator(schema: Json): ValidateFunction {
    let validate = this.#compiled.get(schema);
    if (!validate) {
      validate = this.#ajv.compile(relink(schema) as Json);
      this.#compiled.set(schema, validate);
    }
    return validate;
  }
}
