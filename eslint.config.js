import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'client/dist/**', 'coverage/**', '.tap/**', 'data/**', 'client/schema.d.ts'] })
]
