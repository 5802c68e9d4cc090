/**
 * Where each API lives, once: the server registers its routes under these
 * prefixes, the CLI and the console call them, and the OpenAPI document
 * names them. Nothing here may import server code (the console bundles it).
 */

/** The management plane: tenants, keys, usage, operations (admin keys or a console session). */
export const ADMIN_PREFIX = "/admin/v1";

/** Admin bodies are small JSON documents: a larger one is refused with 413 before it is read. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

/** The public API: resizing and a tenant's own usage (tenant API keys). */
export const PUBLIC_PREFIX = "/v1";

/** Node to node in a fleet (the data path), signed with the cluster secret; never exposed to clients. */
export const INTERNAL_PREFIX = "/internal/v1";

/** Problem type URIs (`/problems/<code>`) dereference here. */
export const PROBLEMS_PREFIX = "/problems";

/** The web console's single-page app. */
export const CONSOLE_PATH = "/console";

/** The OpenAPI 3.1 document of every route. */
export const OPENAPI_PATH = "/openapi.json";
