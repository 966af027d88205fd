import { openStore } from "@flowstate/core";
import { testStore } from "@flowstate/core/testing";
import template from "./mod.ts";

testStore(
  "template",
  ({ clock, indexes, search }) => openStore({ plugin: template, indexes, search }, { clock }),
);
