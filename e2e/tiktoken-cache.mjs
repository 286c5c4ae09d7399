// Writes tiktoken's cl100k_base BPE file into a tiktoken cache folder, rebuilt from the ranks that
// the npm package js-tiktoken ships, so Python's `tiktoken` (used by langchain-openai's
// OpenAIEmbeddings to send token ids) never downloads it from openaipublic.blob.core.windows.net
// at test time.
//
// tiktoken (load.py, read_file_cached) looks for `<TIKTOKEN_CACHE_DIR>/<sha1 of the blob URL>` and
// accepts it only when its sha256 is the one tiktoken_ext/openai_public.py expects; otherwise it
// deletes it and downloads. The file is one `<base64 token bytes> <rank>` line per token, by rank.
//
// Usage: node tiktoken-cache.mjs CACHE_DIR
import { createHash } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import ranks from "js-tiktoken/ranks/cl100k_base";

const URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken";
// tiktoken_ext/openai_public.py, cl100k_base(): expected_hash.
const SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node tiktoken-cache.mjs CACHE_DIR");
  process.exit(2);
}

// js-tiktoken's compact form: lines of `<name> <first rank> <token> <token> ...`, the tokens
// numbered from the first rank on.
const tokens = [];
for (const line of ranks.bpe_ranks.split("\n").filter(Boolean)) {
  const [, first, ...b64] = line.split(" ");
  const offset = Number.parseInt(first, 10);
  b64.forEach((t, i) => tokens.push([offset + i, t]));
}
tokens.sort((a, b) => a[0] - b[0]);
const blob = tokens.map(([rank, t]) => `${t} ${rank}\n`).join("");

const got = createHash("sha256").update(blob).digest("hex");
if (got !== SHA256) {
  console.error(`rebuilt cl100k_base has sha256 ${got}, tiktoken expects ${SHA256}`);
  process.exit(1);
}
mkdirSync(dir, { recursive: true });
const path = join(dir, createHash("sha1").update(URL).digest("hex"));
writeFileSync(`${path}.tmp`, blob);
renameSync(`${path}.tmp`, path);
console.log(path);
