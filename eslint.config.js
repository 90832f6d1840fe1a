import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'client/dist/**', 'coverage/**', '.tap/**', 'data/**', 'client/schema.d.ts']
  }),
  {
    // Lines of at most 120 characters. URLs and regular expressions may run longer (breaking them hurts more
    // than it helps); in tests, so may expected strings, which read best whole.
    rules: { '@stylistic/max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }] }
  },
  {
    files: ['test/**'],
    rules: {
      '@stylistic/max-len': [
        'error',
        {
          code: 120,
          ignoreUrls: true,
          ignoreRegExpLiterals: true,
          ignoreStrings: true,
          ignoreTemplateLiterals: true
        }
      ]
    }
  }
]
