import { openStore } from "@flowstate/core";
import { testStore } from "@flowstate/core/testing";
import template from "./mod.ts";

testStore(
  "template",
  ({ clock, indexes, search, changes }) =>
    openStore({ plugin: template, indexes, search, changes }, { clock }),
);
