// A Switchboard router written in JavaScript.
//
// Build:  npm install && npm run build   (writes router.wasm)
// Check:  switchboard plugin check router.wasm
// Try:    switchboard plugin run router.wasm --world router --input ../inputs/router-greeting.json
//
// ComponentizeJS maps the WIT contract (wit/v0.1.0, world `router`) to
// JavaScript: records are objects with camelCase fields, variants are
// `{ tag, val }`, enums are strings, `option` is a value or `undefined`,
// and 64-bit integers (timestamps, durations) are BigInts.
import { log, config } from 'switchboard:plugin/host@0.1.0';

const MINUTE = 60_000n;

function decision(needsReply, handler, priority, respondWithin, tags, reason) {
  return { needsReply, handler, acknowledge: undefined, priority, respondWithin, tags, reason };
}

export const routing = {
  route({ context, message }) {
    const text = (message.text ?? '').toLowerCase();
    const team = config('team') ?? 'support';
    log('info', `routing ${message.id} (${message.kind})`);

    if (message.kind === 'reaction') {
      return decision(false, { tag: 'nobody' }, 'low', undefined, [], 'a reaction needs no reply');
    }
    const vip = context.contact.tags.includes('vip');
    if (vip || /\b(human|humano|agente|agent|person|pessoa)\b/.test(text)) {
      return decision(true, { tag: 'human', val: { tag: 'team', val: team } }, 'high', 15n * MINUTE, ['js'],
        vip ? 'VIP contact: a person answers' : 'the contact asked for a person');
    }
    const name = context.contact.name ?? 'there';
    return decision(true, { tag: 'bot', val: { tag: 'text', val: `Hi ${name}! How can we help?` } }, 'normal',
      undefined, ['js'], 'default: the bot answers');
  },
};
