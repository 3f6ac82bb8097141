// What `app/[...connect]/route.ts` holds in a Next.js App Router app: a
// generated service's fetch handler under the HTTP methods it serves. Next
// calls each with a NextRequest (a Request) and a context argument, which
// the handler ignores; it routes by the request's path.
import { eliza } from "./eliza.ts";

const handler = eliza.fetch;

export { handler as GET, handler as POST, handler as OPTIONS };
