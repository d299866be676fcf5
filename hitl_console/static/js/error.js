// An error page: only what every page has (the navigation menu, log out).
import "./common.js";
