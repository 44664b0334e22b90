// The demo's sample data: a ChatGPT-format export (the same shape as
// testdata/exports/sample_chatgpt_export.json, which is written from it).

/** Topics of the sample conversations: [title, question, answer]. */
export const SAMPLE_TOPICS: readonly (readonly [string, string, string])[] = [
  [
    "Green tea",
    "Which green tea is mildest?",
    "Try a Japanese sencha brewed at 70°C.",
  ],
  [
    "Marathon plan",
    "How do I train for my first marathon?",
    "Build up to 50 km a week over 16 weeks.",
  ],
  [
    "Sister's birthday",
    "My sister's birthday is on 12 March.",
    "Noted: shall I suggest a gift closer to the date?",
  ],
  [
    "Hiking the Alps",
    "Best hut-to-hut hike in the Alps?",
    "The Haute Route from Chamonix to Zermatt.",
  ],
  [
    "Sourdough",
    "My sourdough is too dense.",
    "Let the dough proof longer, until it doubles.",
  ],
  [
    "Learning Spanish",
    "How do I learn Spanish quickly?",
    "Fifteen minutes a day and a weekly conversation.",
  ],
  [
    "Sleep",
    "I wake up at 4 every night.",
    "Keep the room cool and skip caffeine after noon.",
  ],
  [
    "Budget",
    "How should I split my salary?",
    "Try 50% needs, 30% wants, 20% savings.",
  ],
  [
    "Houseplants",
    "My basil keeps dying.",
    "Basil wants six hours of sun and moist soil.",
  ],
  [
    "Cycling",
    "Road or gravel bike for commuting?",
    "A gravel bike: wider tyres, more comfort.",
  ],
];

/** The demo's sample: a ChatGPT-format export of 36 conversations. */
export function sampleChatgptExport(): unknown[] {
  const TOPICS = SAMPLE_TOPICS;
  const out: unknown[] = [];
  for (let i = 0; i < 36; i++) {
    const [title, q, a] = TOPICS[i % TOPICS.length]!;
    const t = 1_704_067_200 + i * 86_400 + 0.5;
    const id = `sample-${String(i).padStart(2, "0")}`;
    const mapping: Record<string, unknown> = {
      r: { id: "r", parent: null, children: ["m0"], message: null },
    };
    const turns = [q, a, "Thanks, that helps.", "You're welcome."];
    turns.forEach((text, k) => {
      const mid = `m${k}`;
      mapping[mid] = {
        id: mid,
        parent: k === 0 ? "r" : `m${k - 1}`,
        children: k === turns.length - 1 ? [] : [`m${k + 1}`],
        message: {
          id: mid,
          author: { role: k % 2 === 0 ? "user" : "assistant", metadata: {} },
          create_time: t + k * 30,
          content: { content_type: "text", parts: [text] },
          metadata: k % 2 === 1 ? { model_slug: "gpt-4o" } : {},
        },
      };
    });
    out.push({
      title: i < TOPICS.length
        ? title
        : `${title} (${Math.floor(i / TOPICS.length) + 1})`,
      create_time: t,
      update_time: t + 90,
      id,
      conversation_id: id,
      current_node: `m${turns.length - 1}`,
      mapping,
    });
  }
  return out;
}
