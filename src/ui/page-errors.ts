// What a page refuses: input it does not take (400, naming the parameter), and
// a thing it names that does not exist (404).
export class UiInputError extends Error {}

export class NotFoundError extends Error {}
