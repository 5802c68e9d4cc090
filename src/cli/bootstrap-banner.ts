import type { IssuedKey } from "../identity/identity-admin.js";

/**
 * What the first start prints, once: the admin key and the three commands
 * that take a newcomer from nothing to a resized image. The key's secret is
 * stored nowhere else (only its hash is), so this is the only copy.
 */
export function bootstrapBanner(issued: IssuedKey, url: string): string {
  const key = issued.secret;
  return `
================================================================================
 imgfleet: first start — an admin key was created. It is shown ONCE; only its
 hash is stored. Keep it somewhere safe (a password manager).

   export IMGFLEET_URL=${url}
   export IMGFLEET_ADMIN_KEY=${key}

 Create a tenant and an API key for it, then resize an image:

   curl -s -X POST $IMGFLEET_URL/admin/v1/tenants \\
     -H "Authorization: Bearer $IMGFLEET_ADMIN_KEY" -H 'Content-Type: application/json' \\
     -d '{"name":"acme"}'
   # → {"id":"ten_…", ...}; put that id in TENANT:
   curl -s -X POST $IMGFLEET_URL/admin/v1/tenants/$TENANT/keys \\
     -H "Authorization: Bearer $IMGFLEET_ADMIN_KEY" -H 'Content-Type: application/json' \\
     -d '{"name":"web","scopes":["resize"]}'
   # → {"secret":"imf_…", ...}; put that secret in KEY:
   curl -s -X POST "$IMGFLEET_URL/v1/resize?w=400&format=webp" \\
     -H "Authorization: Bearer $KEY" -H 'Content-Type: image/jpeg' \\
     --data-binary @examples/sample.jpg -o sample-400.webp

 Or with the CLI (it reads IMGFLEET_URL and IMGFLEET_ADMIN_KEY):
   npx imgfleet tenants create acme
   npx imgfleet keys create <tenant id> --scope resize
================================================================================
`;
}
